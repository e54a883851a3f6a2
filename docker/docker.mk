# Container targets; included by the top-level Makefile, which defines PY, TFPARITY, RESULTS_DIR
# (and SEEDS). Images: tfparity-base:bookworm (debootstrap, no registry), tfparity:cpu, tfparity:gpu.
#
#   make base-image   Debian bookworm + python3 rootfs via debootstrap, docker import (needs root)
#   make wheelhouse   host-side `pip download` of every wheel the CPU image needs (docker/.wheelhouse/)
#   make image-cpu    the CPU worker image FROM the local base, TF from the wheelhouse
#   make image-gpu    the CUDA worker image FROM tensorflow/tensorflow:2.21.0-gpu (pulled once, if missing)
#   make bench-cpu    the seed suite in CPU containers   (DATASET=mnist by default)
#   make bench-gpu    the seed suite in GPU containers; fails in one line without the NVIDIA runtime
#   make docker-clean remove exited run containers and untagged images replaced by rebuilds
#
# FORCE=1 rebuilds the base image / refreshes the wheelhouse. DOCKER_RUN_ARGS adds `tfparity run`
# options (e.g. --memory-limit 4g --timeout 900).
DOCKER_DATASET ?= $(if $(DATASET),$(DATASET),mnist)
DOCKER_RUN_ARGS ?=
DOCKER_PY ?= $(PY)

.PHONY: base-image wheelhouse image-cpu image-gpu bench-cpu bench-gpu docker-check docker-clean

base-image:
	bash docker/build-base-image.sh $(if $(FORCE),--force)

wheelhouse: install
	PYTHON=$(abspath $(DOCKER_PY)) bash docker/make-wheelhouse.sh $(if $(FORCE),--force)

image-cpu: install base-image wheelhouse
	$(TFPARITY) docker build --device cpu

# The only target that talks to an image registry: it pulls TF's CUDA base once.
GPU_BASE_IMAGE ?= tensorflow/tensorflow:2.21.0-gpu
image-gpu: install
	docker image inspect $(GPU_BASE_IMAGE) >/dev/null 2>&1 || docker pull $(GPU_BASE_IMAGE)
	$(TFPARITY) docker build --device gpu --base-image $(GPU_BASE_IMAGE)

docker-check: install
	$(TFPARITY) docker check

bench-cpu: install
	$(TFPARITY) run --backend docker --device cpu --suite seed --dataset $(DOCKER_DATASET) \
	  $(if $(SEEDS),--seeds $(SEEDS)) --results-dir $(RESULTS_DIR) $(DOCKER_RUN_ARGS)

# The GPU runtime is checked first: without it this fails in one line and starts nothing.
bench-gpu: install
	@$(TFPARITY) docker check-gpu
	docker image inspect $(GPU_BASE_IMAGE) >/dev/null 2>&1 || docker pull $(GPU_BASE_IMAGE)
	$(TFPARITY) run --backend docker --device gpu --suite seed --dataset $(DOCKER_DATASET) \
	  $(if $(SEEDS),--seeds $(SEEDS)) --results-dir $(RESULTS_DIR) $(DOCKER_RUN_ARGS)

# Exited run containers, then the untagged images that rebuilds replaced (only tfparity's: they
# carry its source-hash label). Never a tagged image, never a running container.
docker-clean:
	@for service in bench-cpu bench-gpu; do \
	  ids=$$(docker ps -aq --filter label=com.docker.compose.service=$$service --filter status=exited \
	         --filter status=created); \
	  if [ -n "$$ids" ]; then docker rm -f $$ids; fi; \
	done
	docker image prune -f --filter label=org.tfparity.source-hash
