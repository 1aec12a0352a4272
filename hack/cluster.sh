#!/usr/bin/env bash
# A real, local Kubernetes control plane: etcd + kube-apiserver on free 127.0.0.1 ports, no kubelets.
#
#   hack/cluster.sh up [DIR]             start (DIR defaults to ~/.cache/my-scheduler/clusters/default);
#                                        the last line printed is `export KUBECONFIG=DIR/kubeconfig`
#   hack/cluster.sh down [DIR]           stop and delete its data
#   hack/cluster.sh stop|start etcd|kube-apiserver [DIR]   for fault tests: kill one, start it again
#
# Several clusters run side by side, one DIR each. RBAC is on; `admin` (system:masters) authenticates with a
# static token; service-account tokens are signed, so the TokenRequest API works.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command="${1:-}"
case "$command" in
  up | down) dir="${2:-}" ;;
  stop | start) component="${2:?component: etcd or kube-apiserver}"; dir="${3:-}" ;;
  *) echo "usage: $0 up|down [DIR] | stop|start etcd|kube-apiserver [DIR]" >&2; exit 2 ;;
esac
dir="${dir:-${XDG_CACHE_HOME:-$HOME/.cache}/my-scheduler/clusters/default}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_component() { # name: runs DIR/<name>.cmd in the background, records its pid
  local name="$1"
  setsid bash "$dir/$name.cmd" >>"$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}

stop_component() {
  local name="$1" pid
  [[ -f "$dir/$name.pid" ]] || return 0
  pid="$(cat "$dir/$name.pid")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/$name.pid"
}

wait_ready() {
  local port token
  port="$(cat "$dir/apiserver.port")"; token="$(cat "$dir/admin.token")"
  for _ in $(seq 300); do
    if curl -sfk -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" > /dev/null 2>&1; then return 0; fi
    kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || { tail -20 "$dir/kube-apiserver.log" >&2; return 1; }
    sleep 0.2
  done
  echo "kube-apiserver not ready after 60 s; see $dir/kube-apiserver.log" >&2
  return 1
}

case "$command" in
  down)
    stop_component kube-apiserver; stop_component etcd
    rm -rf "$dir"
    exit 0 ;;
  stop) stop_component "$component"; exit 0 ;;
  start) start_component "$component"; [[ "$component" == kube-apiserver ]] && wait_ready; exit 0 ;;
esac

bin="$("$here/build.sh")"
if [[ -f "$dir/kube-apiserver.pid" ]] && kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
  echo "already running in $dir" >&2
else
  rm -rf "$dir"; mkdir -p "$dir/certs"
  etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
  echo "$api_port" > "$dir/apiserver.port"
  token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$token" > "$dir/admin.token"
  echo "$token,admin,admin,system:masters" > "$dir/tokens.csv"
  openssl genrsa -out "$dir/sa.key" 2048 2> /dev/null

  cat > "$dir/etcd.cmd" <<EOF
exec "$bin/etcd" --name default --data-dir "$dir/etcd" --log-level warn --unsafe-no-fsync \\
  --listen-client-urls http://127.0.0.1:$etcd_port --advertise-client-urls http://127.0.0.1:$etcd_port \\
  --listen-peer-urls http://127.0.0.1:$peer_port --initial-advertise-peer-urls http://127.0.0.1:$peer_port \\
  --initial-cluster default=http://127.0.0.1:$peer_port
EOF
  # No controllers run: the ServiceAccount admission would wait for a default ServiceAccount that nobody
  # creates, and nothing would ever lift TaintNodesByCondition's not-ready taint.
  cat > "$dir/kube-apiserver.cmd" <<EOF
exec "$bin/kube-apiserver" --etcd-servers http://127.0.0.1:$etcd_port \\
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port $api_port --cert-dir "$dir/certs" \\
  --service-cluster-ip-range 10.0.0.0/24 --service-account-issuer https://kubernetes.default.svc \\
  --service-account-key-file "$dir/sa.key" --service-account-signing-key-file "$dir/sa.key" \\
  --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \\
  --disable-admission-plugins ServiceAccount,TaintNodesByCondition --endpoint-reconciler-type none \\
  --max-requests-inflight \${MAX_REQUESTS_INFLIGHT:-400} --max-mutating-requests-inflight \${MAX_MUTATING_REQUESTS_INFLIGHT:-200} \\
  --v 0 \${KUBE_APISERVER_EXTRA_FLAGS:-}
EOF
  start_component etcd
  start_component kube-apiserver
  wait_ready
  cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
EOF
fi
echo "kubectl: $bin/kubectl (PATH=\"$bin:\$PATH\")" >&2
echo "export KUBECONFIG=$dir/kubeconfig"
