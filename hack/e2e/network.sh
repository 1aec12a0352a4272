#!/usr/bin/env bash
# The node's network, as a kind node container has it, made of things this script creates and nothing else:
#   host  $E2E_VETH_HOST $E2E_HOST_IP/30  <->  eth0 $E2E_NODE_IP/30  in the namespace $E2E_NETNS (the node)
#   inside the node: the pods' bridge (made by the CNI bridge plugin), $E2E_POD_CIDR, no default route anywhere
#   host: a route to the pod range through the node, so the API server can answer the pods
#   node: one DNAT rule, $E2E_SERVICE_IP:443 -> $E2E_HOST_IP:$E2E_API_PORT — what kube-proxy does for the
#         `kubernetes` Service in kind; no masquerading (the API server sees pod addresses and routes back)
# Everything inside the namespace (bridge, rules, pod links) goes away with it: hack/e2e/down.sh.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Refuse to shadow anything that already uses these ranges on this machine.
for cidr in "$E2E_LINK_CIDR" "$E2E_POD_CIDR" "$E2E_SERVICE_CIDR"; do
  if [[ -n "$(ip -o addr show to "$cidr")" ]] || ip route show to match "${cidr%/*}" | grep -qv '^default'; then
    e2e_die "$cidr is already in use on this machine (ip addr / ip route); run hack/e2e/down.sh, or pick other ranges in hack/e2e/lib.sh"
  fi
done

ip netns add "$E2E_NETNS"
ip link add "$E2E_VETH_HOST" type veth peer name eth0 netns "$E2E_NETNS"
ip addr add "$E2E_HOST_IP/30" dev "$E2E_VETH_HOST"
ip link set "$E2E_VETH_HOST" up
ip -n "$E2E_NETNS" addr add "$E2E_NODE_IP/30" dev eth0
ip -n "$E2E_NETNS" link set eth0 up
ip -n "$E2E_NETNS" link set lo up   # the kubelet reaches containerd's streaming server (exec, logs) on 127.0.0.1
ip route add "$E2E_POD_CIDR" via "$E2E_NODE_IP" dev "$E2E_VETH_HOST"
ip netns exec "$E2E_NETNS" sysctl -qw net.ipv4.ip_forward=1   # this namespace's own setting, not the host's
ip netns exec "$E2E_NETNS" iptables -t nat -A PREROUTING -d "$E2E_SERVICE_IP/32" -p tcp --dport 443 \
  -m comment --comment "my-scheduler e2e: the kubernetes Service" \
  -j DNAT --to-destination "$E2E_HOST_IP:$E2E_API_PORT"
e2e_log "network: $E2E_VETH_HOST $E2E_HOST_IP <-> $E2E_NETNS $E2E_NODE_IP, pods $E2E_POD_CIDR, $E2E_SERVICE_IP:443 -> $E2E_HOST_IP:$E2E_API_PORT"
