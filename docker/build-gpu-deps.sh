#!/usr/bin/env bash
# Make the GPU image's dependency layer without a Dockerfile build: one container of the base image
# with no network, the GPU wheelhouse bind-mounted read-only, `pip install --no-index` into
# /opt/tfparity/venv, then `docker commit`. The image gets exactly one extra layer (the venv, ~6 GB):
# the 3.4 GB wheelhouse never enters a build context or a layer, and nothing is copied between stages
# (a multi-stage Dockerfile build of the same venv took 752 s cold vs ~530 s here, and re-sent the
# wheelhouse on every warm build; see docker/README.md).
#
# The caller (tfparity docker build --device gpu) names the tag: tfparity-gpu-deps:<key>, the key a
# hash of the wheel names, the requirements, this script and the base image id, so the layer is made
# once per wheelhouse and reused by every harness change (the thin docker/Dockerfile.gpu on top).
#
# Usage: docker/build-gpu-deps.sh WHEELHOUSE TAG      (env: BASE_IMAGE, default tfparity-base:bookworm)
set -euo pipefail

die() { echo "build-gpu-deps: error: $*" >&2; exit 2; }
[[ $# -eq 2 ]] || die "usage: build-gpu-deps.sh WHEELHOUSE TAG"
wheelhouse="$(cd "$1" 2>/dev/null && pwd)" || die "no wheelhouse directory '$1' (make wheelhouse-gpu)"
tag="$2"
base="${BASE_IMAGE:-tfparity-base:bookworm}"
[[ -f "$wheelhouse/.requirements.txt" && -f "$wheelhouse/.constraints.txt" ]] \
    || die "$wheelhouse has no .requirements.txt/.constraints.txt (made by docker/make-wheelhouse.sh --device gpu)"
docker image inspect "$base" >/dev/null 2>&1 || die "base image $base is missing (make base-image)"
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "build-gpu-deps: $tag exists"
    exit 0
fi

name="tfparity-gpu-deps-build-$$-$RANDOM"
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
start=$(date +%s)
# TensorFlow's C++ headers (site-packages/tensorflow/include, ~430 MB) serve custom-op builds only.
if ! docker run --name "$name" --network none \
        -v "$wheelhouse:/wheelhouse:ro" "$base" sh -euc '
            python3 -m venv /opt/tfparity/venv
            /opt/tfparity/venv/bin/python -m pip install --no-index --find-links /wheelhouse \
                --no-cache-dir --disable-pip-version-check --progress-bar off --quiet \
                -r /wheelhouse/.requirements.txt -c /wheelhouse/.constraints.txt
            /opt/tfparity/venv/bin/python -m pip check
            rm -rf /opt/tfparity/venv/lib/python3.11/site-packages/tensorflow/include' >&2; then
    die "pip install into the GPU deps container failed (output above)"
fi
installed=$(date +%s)
docker commit \
    --change "LABEL org.tfparity.gpu-deps=$tag" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$name" "$tag" >/dev/null
echo "build-gpu-deps: $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.2f GB", $1/1e9}')):" \
     "install $((installed - start)) s, commit $(( $(date +%s) - installed )) s"
