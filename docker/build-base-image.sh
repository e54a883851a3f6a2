#!/usr/bin/env bash
# Build the registry-free base image: a minimal Debian rootfs with python3 made by debootstrap on this
# host, then `docker import`ed. No image registry is involved, so the CPU image builds on hosts that
# only reach Debian's and PyPI's package mirrors (or a local wheelhouse).
#
# debootstrap is given no mirror argument on purpose: it uses its own default, and no mirror host
# name belongs in this repository.
#
# Usage: docker/build-base-image.sh [--force]     (env: BASE_TAG, SUITE)
set -euo pipefail

TAG="${BASE_TAG:-tfparity-base:bookworm}"
SUITE="${SUITE:-bookworm}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "build-base-image: error: $*" >&2; exit 2; }

command -v docker >/dev/null || die "docker CLI not found; install docker.io (or run .ci/setup-docker.sh)"
docker info >/dev/null 2>&1 || die "Docker engine not reachable; start it (e.g. 'dockerd &' or 'systemctl start docker')"
if [[ $FORCE == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-base-image: $TAG exists (use --force to rebuild)"
    exit 0
fi
command -v debootstrap >/dev/null || die "debootstrap not found; apt-get install debootstrap"
[[ "$(id -u)" == 0 ]] || die "debootstrap needs root (run with sudo)"

mkdir -p "$here/.base"
rootfs="$(mktemp -d "$here/.base/rootfs.XXXXXX")"
log="$here/.base/debootstrap.log"
trap 'rm -rf --one-file-system "$rootfs"' EXIT

start=$(date +%s)
echo "build-base-image: debootstrap $SUITE (minbase + python3) into $rootfs (log: $log)"
# python3-venv brings ensurepip's wheels: Debian's python refuses system-wide pip installs (PEP 668),
# so the image installs everything into a venv.
if ! debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$rootfs" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "debootstrap failed (last lines above, full log: $log)"
fi
# Trim what a container never needs: package caches and lists, docs, man pages.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
echo "build-base-image: debootstrap took $(( $(date +%s) - start )) s"

tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.tfparity.base=debootstrap-$SUITE-minbase" \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null
echo "build-base-image: imported $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')) in $(( $(date +%s) - start )) s"
