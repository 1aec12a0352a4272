#!/usr/bin/env bash
# The pod sandbox image, built here because registry.k8s.io cannot be reached: hack/e2e/pause.c compiled static,
# alone in an image, tagged registry.k8s.io/pause:3.10 (containerd's sandbox_image, and what test-pod.yaml runs).
# Cached: rebuilt only when pause.c or this script changes.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stamp_file="$E2E_CACHE/pause.stamp"
stamp="$(cat "$0" "$E2E_HACK/pause.c" | sha256sum | cut -c1-16)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] && "${E2E_BUILDAH[@]}" inspect --type image "$E2E_PAUSE_IMAGE" > /dev/null 2>&1; then
  e2e_log "pause image $E2E_PAUSE_IMAGE: cached"
  exit 0
fi
mkdir -p "$E2E_CACHE/pause"
gcc -static -Os -s -o "$E2E_CACHE/pause/pause" "$E2E_HACK/pause.c"
container="$("${E2E_BUILDAH[@]}" from scratch)"
trap '"${E2E_BUILDAH[@]}" rm "$container" > /dev/null 2>&1 || true' EXIT
"${E2E_BUILDAH[@]}" copy "$container" "$E2E_CACHE/pause/pause" /pause > /dev/null
"${E2E_BUILDAH[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$container"
"${E2E_BUILDAH[@]}" commit --quiet "$container" "$E2E_PAUSE_IMAGE" > /dev/null
echo "$stamp" > "$stamp_file"
e2e_log "pause image $E2E_PAUSE_IMAGE: built"
