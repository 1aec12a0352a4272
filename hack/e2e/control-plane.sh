#!/usr/bin/env bash
# The control plane a kind node runs, from the binaries hack/build.sh builds: etcd, kube-apiserver on the host's end
# of the node's veth ($E2E_HOST_IP:$E2E_API_PORT), kube-controller-manager (only the controllers this path needs)
# and the stock kube-scheduler, which places the my-scheduler pods themselves, as in kind.
# Unlike hack/cluster.sh (no kubelets), the ServiceAccount admission plugin is on: real pods get token volumes.
# Writes $E2E_RUN/kubeconfig (the admin, system:masters).
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="$("$E2E_REPO/hack/build.sh" --bin-dir)"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
  [[ -x "$bin/$b" ]] || e2e_die "$bin/$b missing: run hack/build.sh (make build)"
done
dir="$E2E_RUN/control-plane"
mkdir -p "$dir/certs"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_port="$(free_port)"; peer_port="$(free_port)"
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "$token,admin,admin,system:masters" > "$dir/tokens.csv"
openssl genrsa -out "$dir/sa.key" 2048 2> /dev/null
server="https://$E2E_HOST_IP:$E2E_API_PORT"

e2e_spawn control-plane etcd "$bin/etcd" --name e2e --data-dir "$dir/etcd" --log-level warn --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "e2e=http://127.0.0.1:$peer_port"

# TaintNodesByCondition stays off: it taints a new node not-ready, and the controller that lifts the taint (node
# lifecycle) is not run. The kubelet is reached by its InternalIP (its hostname resolves nowhere).
e2e_spawn control-plane kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$E2E_HOST_IP" --advertise-address "$E2E_HOST_IP" --secure-port "$E2E_API_PORT" \
  --cert-dir "$dir/certs" --service-cluster-ip-range "$E2E_SERVICE_CIDR" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$dir/sa.key" --service-account-signing-key-file "$dir/sa.key" \
  --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
  --disable-admission-plugins TaintNodesByCondition --kubelet-preferred-address-types InternalIP --v 0
e2e_wait 90 kube-apiserver curl -sfk -H "Authorization: Bearer $token" "$server/readyz" \
  || { tail -20 "$E2E_RUN/logs/kube-apiserver.log" >&2; exit 1; }

cat > "$E2E_RUN/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $server
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
KUBECONFIG

# Deployments -> ReplicaSets -> pods; the `default` ServiceAccount of each namespace; the kube-root-ca.crt
# ConfigMap that every token volume carries (the API server's own self-signed CA); the garbage collector, so that
# deleting a Deployment deletes its ReplicaSets and pods (uninstall). StatefulSets, and for their claims on kind's
# `standard` class (storage.sh): the PV binder, which hands a claim with a selected node to its provisioner and binds
# it to the PV made, and the two protection controllers, which lift the in-use finalizers so that claims and volumes
# can be deleted. No node lifecycle controller: one real node. No attach/detach controller: the provisioner's hostPath
# volumes are not attachable (the kubelet mounts them without one).
controllers=(
  deployment-controller replicaset-controller serviceaccount-controller root-ca-certificate-publisher-controller
  garbage-collector-controller statefulset-controller persistentvolume-binder-controller
  persistentvolumeclaim-protection-controller persistentvolume-protection-controller
)
e2e_spawn control-plane kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$E2E_RUN/kubeconfig" \
  --controllers "$(IFS=,; echo "${controllers[*]}")" \
  --root-ca-file "$dir/certs/apiserver.crt" --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --v 0
e2e_spawn control-plane kube-scheduler "$bin/kube-scheduler" --kubeconfig "$E2E_RUN/kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --v 0
e2e_log "control plane: $server (export KUBECONFIG=$E2E_RUN/kubeconfig)"
