#!/usr/bin/env bash
# The node, as kind's node image has it: containerd (CRI) + runc + CNI bridge, and the kubelet, both in the node's
# network namespace ($E2E_NETNS) and in the cgroup /$E2E_CGROUP/node; the pods' cgroups go under /$E2E_CGROUP too.
# The sandbox image is loaded into containerd first (kind's node image ships it). Needs network.sh and
# control-plane.sh first. Every path is under $E2E_RUN, so tear-down knows what to unmount and delete.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="$("$E2E_REPO/hack/build.sh" --bin-dir)"
dir="$E2E_RUN/node"
mkdir -p "$dir/cni/net.d" "$dir/kubelet" "$dir/pod-logs"
socket="$dir/containerd.sock"

# CRI settings this machine needs: restrict_oom_score_adj (no CAP_SYS_RESOURCE: without it every sandbox fails
# with "can't get final child's PID from pipe: EOF"); cgroupfs, not systemd (there is none); pod network namespaces
# mounted under containerd's state directory instead of the host's /var/run/netns.
cat > "$dir/containerd.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
plugin_dir = ""
[grpc]
  address = "$socket"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$E2E_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
TOML

# The pods' network: a bridge inside the node, addresses from $E2E_POD_CIDR, and routes only to the service range
# and the node's link — no default route, so a pod reaches the API server and nothing beyond this machine.
cat > "$dir/cni/net.d/10-$E2E_CNI_NETWORK.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$E2E_CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge", "bridge": "$E2E_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$E2E_POD_CIDR"}]],
        "routes": [{"dst": "$E2E_SERVICE_CIDR"}, {"dst": "$E2E_LINK_CIDR"}]
      }
    }
  ]
}
JSON

e2e_spawn node containerd --netns containerd --config "$dir/containerd.toml"
e2e_wait 30 containerd ctr --address "$socket" version || { tail -20 "$E2E_RUN/logs/containerd.log" >&2; exit 1; }

# kind's node image carries the sandbox image; here it comes from buildah's storage (hack/e2e/pause-image.sh).
"${E2E_BUILDAH[@]}" push --quiet "$E2E_PAUSE_IMAGE" "docker-archive:$dir/pause.tar:$E2E_PAUSE_IMAGE" > /dev/null
ctr --address "$socket" -n k8s.io images import "$dir/pause.tar" > /dev/null

# A test node: the API server's calls (logs, exec) are let in without credentials (anonymous + AlwaysAllow),
# and the node uses the admin kubeconfig rather than a bootstrap-token client certificate.
cat > "$dir/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: /$E2E_CGROUP
containerRuntimeEndpoint: unix://$socket
imageServiceEndpoint: unix://$socket
address: $E2E_NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: $dir/pod-logs
resolvConf: ""
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
YAML
e2e_spawn node kubelet --netns "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$E2E_RUN/kubeconfig" \
  --root-dir "$dir/kubelet" --hostname-override "$E2E_NODE_NAME" --node-ip "$E2E_NODE_IP" --v 1
e2e_log "node: containerd and kubelet started ($E2E_NODE_NAME, $E2E_NODE_IP)"
