#!/usr/bin/env bash
# "kind create cluster" without Docker: one real node (containerd + kubelet in its own network namespace) on a
# local control plane. Tears down any leftover of an earlier run first. Last line: export KUBECONFIG=…
#   hack/e2e/up.sh && export KUBECONFIG=~/.cache/my-scheduler/e2e/run/kubeconfig    …    hack/e2e/down.sh
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $EUID -eq 0 ]] || e2e_die "needs root (network namespaces, mounts, cgroups), as kind's node container has"
for tool in containerd containerd-shim-runc-v2 runc ctr buildah iptables nsenter /usr/lib/cni/bridge /usr/lib/cni/host-local; do
  command -v "$tool" > /dev/null || e2e_die "$tool missing: apt-get install containerd runc buildah containernetworking-plugins iptables"
done
"$E2E_HACK/down.sh"
mkdir -p "$E2E_RUN"
"$E2E_HACK/network.sh"
"$E2E_HACK/control-plane.sh"
"$E2E_HACK/node.sh"

export KUBECONFIG="$E2E_RUN/kubeconfig"
kubectl="$("$E2E_REPO/hack/build.sh" --bin-dir)/kubectl"
node_ready() { [[ "$("$kubectl" get node "$E2E_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
e2e_wait 120 "node $E2E_NODE_NAME Ready" node_ready || { tail -30 "$E2E_RUN/logs/kubelet.log" >&2; exit 1; }
# What a pod needs before it can be created and started: its namespace's default ServiceAccount (admission) and
# the kube-root-ca.crt ConfigMap (its token volume).
for ns in default kube-system; do
  e2e_wait 60 "$ns ServiceAccount" "$kubectl" -n "$ns" get serviceaccount default
  e2e_wait 60 "$ns kube-root-ca.crt" "$kubectl" -n "$ns" get configmap kube-root-ca.crt
done
"$E2E_HACK/storage.sh"   # kind's default StorageClass `standard` and its provisioner
e2e_log "node $E2E_NODE_NAME Ready"
echo "export KUBECONFIG=$KUBECONFIG"
