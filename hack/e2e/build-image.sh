#!/usr/bin/env bash
# `docker build -t my-scheduler:dev .`, without Docker: buildah builds the unchanged Dockerfile, FROM the local
# stand-in for python:3.11-slim (hack/e2e/base-image.sh). RUN steps share the host's network (pip reaches the
# package index; there is no build bridge) and see the host's CA bundle (for hosts behind a TLS-inspecting proxy).
#   hack/e2e/build-image.sh [TAG]      (default my-scheduler:dev)
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tag="${1:-my-scheduler:dev}"
nice -n 10 "${E2E_BUILDAH[@]}" bud --pull=never --network host --layers \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -t "$tag" -f "$E2E_REPO/Dockerfile" "$E2E_REPO" > "$E2E_CACHE/build-image.log" 2>&1 \
  || { tail -30 "$E2E_CACHE/build-image.log" >&2; exit 1; }
e2e_log "image $tag built from $E2E_REPO/Dockerfile (log: $E2E_CACHE/build-image.log)"
