#!/usr/bin/env bash
# `kind load docker-image IMAGE`, without Docker: the image from buildah's storage (where `buildah bud` put it)
# into the node's containerd, under the name a pod spec uses (my-scheduler:dev -> docker.io/library/my-scheduler:dev).
#   hack/e2e/load-image.sh my-scheduler:dev
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image="${1:?usage: $0 IMAGE}"
archive="$E2E_RUN/images/${image//[\/:]/_}.tar"
mkdir -p "$E2E_RUN/images"
"${E2E_BUILDAH[@]}" push --quiet "$image" "docker-archive:$archive:$image" > /dev/null
ctr --address "$E2E_RUN/node/containerd.sock" -n k8s.io images import "$archive" > /dev/null
rm -f "$archive"
e2e_log "image $image loaded into the node's containerd"
