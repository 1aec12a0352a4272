#!/usr/bin/env bash
# Builds the stock kube-apiserver, kube-scheduler, kube-controller-manager, kubelet, kubectl and etcd from the official Go modules pinned in
# hack/k8s/go.mod and hack/etcd/go.mod, once, into a cache outside the repo. Prints the bin directory.
# A stamp of both go.mod/go.sum pairs decides whether a rebuild is needed, so changing a pin rebuilds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$here/k8s/go.mod")"
bin="${MY_SCHEDULER_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/my-scheduler/k8s-$k8s_version/bin}"
stamp="$(cat "$here"/k8s/go.mod "$here"/k8s/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum "$0" | sha256sum | cut -c1-16)"

if [[ "${1:-}" == --bin-dir ]]; then  # where the binaries are (or will be), without building
  echo "$bin"
  exit 0
fi
if [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp" ]]; then
  echo "$bin"
  exit 0
fi

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
start=$SECONDS
echo "building kube-apiserver, kube-scheduler, kube-controller-manager, kubelet, kubectl $k8s_version and etcd into $bin (cold: ~15-30 min)" >&2
(cd "$here/k8s" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubelet)
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
echo "$stamp" > "$bin/.stamp"
echo "built in $((SECONDS - start)) s" >&2
echo "$bin"
