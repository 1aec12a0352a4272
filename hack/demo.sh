#!/usr/bin/env bash
# The demo: a fresh local control plane with three simulated nodes (one tainted, one cordoned, one plain),
# the scheduler running against it, test-pod.yaml applied and bound. Everything is stopped at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir="$(mktemp -d /tmp/my-scheduler-demo.XXXXXX)"
scheduler_pid=""
cleanup() {
  [[ -n "$scheduler_pid" ]] && kill -TERM "$scheduler_pid" 2>/dev/null && wait "$scheduler_pid" 2>/dev/null || true
  hack/cluster.sh down "$dir/cluster"
  rm -rf "$dir"
}
trap cleanup EXIT

echo "== starting a local control plane (etcd + kube-apiserver on 127.0.0.1)"
eval "$(hack/cluster.sh up "$dir/cluster" | tail -1)"
PATH="$(hack/build.sh --bin-dir):$PATH"

echo "== creating three simulated nodes"
python3 hack/nodes.py 1 --prefix demo-tainted --taint gpu=true:NoSchedule
python3 hack/nodes.py 1 --prefix demo-cordoned --cordoned
python3 hack/nodes.py 1 --prefix demo-worker
kubectl get nodes

echo "== starting my-scheduler"
python3 scheduler.py --kubeconfig "$KUBECONFIG" > "$dir/scheduler.log" 2>&1 &
scheduler_pid=$!

echo "== kubectl apply -f test-pod.yaml"
kubectl apply -f test-pod.yaml
for _ in $(seq 100); do
  [[ -n "$(kubectl get pod test-pod -o jsonpath='{.spec.nodeName}')" ]] && break
  sleep 0.1
done

echo "== the scheduler's log"
cat "$dir/scheduler.log"
echo "== the pod"
kubectl get pod test-pod -o wide
kubectl get events --field-selector involvedObject.name=test-pod
grep -q "Bound default/test-pod -> demo-worker" "$dir/scheduler.log"
echo "== demo passed: test-pod was bound to the only plain node; stopping everything"
