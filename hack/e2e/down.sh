#!/usr/bin/env bash
# Tear-down of everything hack/e2e/up.sh made, whatever state a run died in; safe to run when nothing is up.
# Exactly what the e2e created, found by name, never by a broad pattern:
#   processes  every pid in the cgroup /$E2E_CGROUP (control plane, local-path-provisioner, containerd, shims,
#              kubelet, the pods' containers)
#   mounts     every mount point under $E2E_RUN (container root filesystems, volumes, pod network namespaces)
#   network    the namespace $E2E_NETNS (its veth, bridge, pod links and the DNAT rule go with it)
#   cgroups    /$E2E_CGROUP in every hierarchy
#   files      $E2E_RUN (with the provisioner's volumes; the logs are kept in $E2E_LOGS); the kubelet's and CNI's
#              few files outside it
# Exits 1 naming whatever is still left.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cgroup_pids() {
  local mount
  while read -r mount; do
    if [[ -d "$mount/$E2E_CGROUP" ]]; then find "$mount/$E2E_CGROUP" -name cgroup.procs -exec cat {} + 2> /dev/null; fi
  done < <(e2e_cgroup_mounts) | sort -un
}

stop_processes() {
  local pids signal
  for signal in TERM TERM TERM TERM TERM KILL KILL KILL; do
    mapfile -t pids < <(cgroup_pids)
    ((${#pids[@]})) || return 0
    kill "-$signal" "${pids[@]}" 2> /dev/null || true
    sleep 1
  done
  mapfile -t pids < <(cgroup_pids)
  ((${#pids[@]} == 0))
}

run_mounts() { awk -v run="$E2E_RUN/" 'index($5, run) == 1 {print $5}' /proc/self/mountinfo | sort -r; }

unmount_all() {
  local mount
  for _ in 1 2 3; do
    while read -r mount; do umount "$mount" 2> /dev/null || umount -l "$mount" 2> /dev/null || true; done < <(run_mounts)
    [[ -z "$(run_mounts)" ]] && return 0
  done
  return 1
}

remove_cgroups() {
  local mount
  while read -r mount; do
    [[ -d "$mount/$E2E_CGROUP" ]] || continue
    for _ in 1 2 3 4 5; do
      find "$mount/$E2E_CGROUP" -depth -type d -exec rmdir {} + 2> /dev/null || true
      [[ -d "$mount/$E2E_CGROUP" ]] || break
      sleep 0.5
    done
  done < <(e2e_cgroup_mounts)
}

stop_processes || e2e_log "processes still running: $(cgroup_pids | tr '\n' ' ')"
if [[ -d "$E2E_RUN/logs" ]]; then
  rm -rf "$E2E_LOGS"; cp -r "$E2E_RUN/logs" "$E2E_LOGS"
  cp -r "$E2E_RUN/node/pod-logs" "$E2E_LOGS/pods" 2> /dev/null || true
fi
unmount_all || e2e_log "still mounted: $(run_mounts | tr '\n' ' ')"
ip netns del "$E2E_NETNS" 2> /dev/null || true
ip link del "$E2E_VETH_HOST" 2> /dev/null || true   # normally gone with the namespace (its peer)
remove_cgroups
# The kubelet links every container's log into /var/log/containers whatever podLogsDir says; CNI caches each
# sandbox's results in /var/lib/cni/results (named by network and sandbox id).
find /var/log/containers -maxdepth 1 -type l -lname "$E2E_RUN/*" -delete 2> /dev/null || true
for sandbox in "$E2E_RUN"/node/containerd/{root,state}/io.containerd.grpc.v1.cri/sandboxes/*; do
  [[ -e "$sandbox" ]] || continue
  rm -f "/var/lib/cni/results/cni-loopback-${sandbox##*/}-lo" "/var/lib/cni/results/$E2E_CNI_NETWORK-${sandbox##*/}-eth0"
done
[[ -n "$(run_mounts)" ]] || rm -rf --one-file-system "$E2E_RUN"

left=()
[[ -z "$(cgroup_pids)" ]] || left+=("processes: $(cgroup_pids | tr '\n' ' ')")
[[ -z "$(run_mounts)" ]] || left+=("mounts: $(run_mounts | tr '\n' ' ')")
! ip netns list | grep -qw "$E2E_NETNS" || left+=("network namespace $E2E_NETNS")
! ip link show "$E2E_VETH_HOST" > /dev/null 2>&1 || left+=("link $E2E_VETH_HOST")
while read -r mount; do [[ ! -d "$mount/$E2E_CGROUP" ]] || left+=("cgroup $mount/$E2E_CGROUP"); done < <(e2e_cgroup_mounts)
[[ ! -e "$E2E_RUN" ]] || left+=("directory $E2E_RUN")
if ((${#left[@]})); then
  e2e_log "tear-down left: ${left[*]}"
  exit 1
fi
e2e_log "tear-down: nothing left (logs of the run in $E2E_LOGS)"
