#!/usr/bin/env bash
# Builds rancher's local-path-provisioner — the provisioner of kind's default StorageClass `standard` — from the Go
# module pinned in hack/local-path/go.mod, once, into hack/build.sh's bin directory, as hack/build.sh builds the
# Kubernetes binaries (CGO off, -trimpath). Prints the binary's path. Only the e2e node uses it (hack/e2e/storage.sh).
# Its own stamp (this module's go.mod/go.sum and this script) decides whether a rebuild is needed. A script of its own
# rather than a step of hack/build.sh: that one's stamp covers its own text, so touching it rebuilds every binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "github.com/rancher/local-path-provisioner" {print $2}' "$here/go.mod")"
bin="$("$here/../build.sh" --bin-dir)"
stamp_file="$bin/.stamp-local-path"
stamp="$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -c1-16)"

if [[ -x "$bin/local-path-provisioner" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  echo "$bin/local-path-provisioner"
  exit 0
fi

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin"
start=$SECONDS
echo "building local-path-provisioner $version into $bin (cold: ~1 min)" >&2
# main.VERSION is what its upstream build sets (scripts/build); the binary reports it in --version.
(cd "$here" && go build -trimpath -ldflags "-s -w -X main.VERSION=$version" -o "$bin/local-path-provisioner" \
  github.com/rancher/local-path-provisioner)
echo "$stamp" > "$stamp_file"
echo "built in $((SECONDS - start)) s" >&2
echo "$bin/local-path-provisioner"
