# Shared settings for the e2e "kind without Docker" node (sourced by the hack/e2e/*.sh scripts).
#
# Everything the e2e creates is named here, so that tear-down removes exactly that and nothing else:
#   - files:    $E2E_CACHE (images, kept between runs) and $E2E_RUN (one run: control plane, node, logs)
#   - network:  the namespace $E2E_NETNS, the veth $E2E_VETH_HOST to it, and addresses in ranges no one else uses
#               here; the pods' bridge, routes and the one DNAT rule live inside the node's namespace
#   - cgroups:  /$E2E_CGROUP in every cgroup hierarchy: the node's daemons, the control plane and the pods
# shellcheck shell=bash disable=SC2034  # the variables are read by the scripts that source this file

E2E_HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_REPO="$(cd "$E2E_HACK/../.." && pwd)"
E2E_CACHE="${MY_SCHEDULER_E2E_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/my-scheduler/e2e}"
E2E_RUN="$E2E_CACHE/run"
E2E_LOGS="$E2E_CACHE/last-run"          # the logs of the last run, copied out at tear-down
E2E_BUILDAH=(buildah --root "$E2E_CACHE/buildah/root" --runroot "$E2E_CACHE/buildah/runroot" --storage-driver overlay)

E2E_NETNS=my-scheduler-e2e
E2E_VETH_HOST=mse2e-host                # the host's end; the node's end is eth0 inside $E2E_NETNS
E2E_HOST_IP=10.249.0.1                  # kube-apiserver listens here, on kind's port; the node (kubelet) is .2
E2E_API_PORT=6443
E2E_NODE_IP=10.249.0.2
E2E_LINK_CIDR=10.249.0.0/30
E2E_POD_CIDR=10.244.0.0/24              # kind's pod range (buildah's own bridge takes 10.88.0.0/16)
E2E_SERVICE_CIDR=10.96.0.0/16           # kind's service range; 10.96.0.1 is the `kubernetes` Service
E2E_SERVICE_IP=10.96.0.1
E2E_BRIDGE=mse2e0
E2E_CNI_NETWORK=my-scheduler-e2e
E2E_NODE_NAME=e2e-node
E2E_CGROUP=my-scheduler-e2e
E2E_PAUSE_IMAGE=registry.k8s.io/pause:3.10

e2e_log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
e2e_die() { e2e_log "error: $*"; exit 1; }

# cgroup hierarchies, one mount point each: v1 (cpu, memory, pids, the named systemd one, ...) and, on a hybrid
# host, the v2 "unified" one, where runc makes the containers' cgroups too.
e2e_cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/mounts; }

# Makes /$E2E_CGROUP/GROUP in every hierarchy (cpuset needs its cpus and mems filled before it takes a process).
e2e_cgroup_create() {
  local group="$1" mount dir
  while read -r mount; do
    for dir in "$mount/$E2E_CGROUP" "$mount/$E2E_CGROUP/$group"; do
      [[ -d "$dir" ]] || mkdir "$dir"
      if [[ -f "$dir/cpuset.cpus" && -z "$(cat "$dir/cpuset.cpus")" ]]; then
        cat "$(dirname "$dir")/cpuset.cpus" > "$dir/cpuset.cpus"
        cat "$(dirname "$dir")/cpuset.mems" > "$dir/cpuset.mems"
      fi
    done
  done < <(e2e_cgroup_mounts)
}

# e2e_spawn GROUP NAME [--netns] COMMAND...: runs COMMAND in the background in the cgroup /$E2E_CGROUP/GROUP
# (where tear-down finds it and everything it forks), optionally in the node's network namespace only (nsenter
# --net, not `ip netns exec`, which would also give it a mount namespace of its own: the kubelet's volume mounts
# must be seen by containerd). Output goes to $E2E_RUN/logs/NAME.log, the pid to $E2E_RUN/NAME.pid.
e2e_spawn() {
  local group="$1" name="$2"; shift 2
  local prefix=()
  if [[ "${1:-}" == --netns ]]; then prefix=(nsenter "--net=/run/netns/$E2E_NETNS"); shift; fi
  e2e_cgroup_create "$group"
  mkdir -p "$E2E_RUN/logs"
  local procs=() mount
  while read -r mount; do procs+=("$mount/$E2E_CGROUP/$group/cgroup.procs"); done < <(e2e_cgroup_mounts)
  # shellcheck disable=SC2016  # $$ and $E2E_PROCS are the inner shell's
  E2E_PROCS="${procs[*]}" setsid bash -c 'for f in $E2E_PROCS; do echo $$ > "$f"; done; exec "$@"' _ "${prefix[@]}" "$@" \
    >> "$E2E_RUN/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$E2E_RUN/$name.pid"
}

# e2e_wait SECONDS WHAT COMMAND...: retries COMMAND every 0.2 s until it succeeds.
e2e_wait() {
  local seconds="$1" what="$2" deadline; shift 2
  deadline=$((SECONDS + seconds))
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || { e2e_log "$what: not after ${seconds} s"; return 1; }
    sleep 0.2
  done
}
