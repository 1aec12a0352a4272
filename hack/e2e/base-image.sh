#!/usr/bin/env bash
# The stand-in for `python:3.11-slim`: the official image cannot be pulled here (no registry but the package
# registries is reachable), so one with the same contract is made from Debian packages — Debian bookworm's Python
# 3.11, a virtualenv on PATH so that `python` and `pip` exist as in the official image — and tagged with its name in
# buildah's storage. The Dockerfile then builds unchanged. Cached: rebuilt only when this script changes.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name=docker.io/library/python:3.11-slim
stamp_file="$E2E_CACHE/base.stamp"
stamp="$(sha256sum "$0" | cut -c1-16)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] && "${E2E_BUILDAH[@]}" inspect --type image "$name" > /dev/null 2>&1; then
  e2e_log "base image $name: cached"
  exit 0
fi

# The Debian mirror the host's apt already uses (debootstrap's default otherwise).
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2> /dev/null || true)"
[[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2> /dev/null || true)"

work="$E2E_CACHE/base"
rm -rf "$work"; mkdir -p "$work"
e2e_log "base image: debootstrap bookworm (minbase, python3) into $work/rootfs"
nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs" ${mirror:+"$mirror"} > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# The official image has `python` and `pip` on PATH and lets pip install system-wide; a venv gives both
# without Debian's "externally managed environment" refusal.
chroot "$work/rootfs" python3 -m venv /opt/venv
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .

container="$("${E2E_BUILDAH[@]}" from scratch)"
trap '"${E2E_BUILDAH[@]}" rm "$container" > /dev/null 2>&1 || true' EXIT
"${E2E_BUILDAH[@]}" add "$container" "$work/rootfs.tar" / > /dev/null
"${E2E_BUILDAH[@]}" config --env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 --label "org.opencontainers.image.description=my-scheduler e2e stand-in for python:3.11-slim" \
  "$container"
"${E2E_BUILDAH[@]}" commit --quiet "$container" "$name" > /dev/null
rm -rf "$work"   # the rootfs lives on in buildah's storage
echo "$stamp" > "$stamp_file"
e2e_log "base image $name: built"
