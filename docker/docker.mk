# Container targets; included by the top-level Makefile, which defines PY, TFPARITY, RESULTS_DIR
# (and SEEDS). Images: tfparity-base:bookworm (debootstrap, no registry), tfparity:cpu, tfparity:gpu
# (on tfparity-gpu-deps:<key>). No target talks to an image registry.
#
#   make base-image       Debian bookworm + python3 rootfs via debootstrap, docker import (needs root)
#   make wheelhouse       host-side `pip download` of every wheel the CPU image needs (docker/.wheelhouse/)
#   make wheelhouse-gpu   the same for the GPU image: tensorflow[and-cuda] + pinned NVIDIA wheels (3.4 GB)
#   make image-cpu        the CPU worker image FROM the local base, TF from the wheelhouse
#   make image-gpu        the GPU worker image: deps layer (made once per GPU wheelhouse) + the harness
#   make bench-cpu        the seed suite in CPU containers   (DATASET=mnist by default)
#   make probe-cpu        the numerics probe of the seed models in CPU containers
#   make bench-gpu        the GPU check, then the seed suite in GPU containers (GPUS=0 by default)
#   make bench-gpu-paths  the GPU check, then every GPU path and probe (docker/gpu-paths.sh; the nightly)
#   make gpu-check        for a GPU owner: check, one short epoch of every GPU path + probes, compare with
#                         the CPU path, report, one verdict (docker/gpu-check.sh; <= 10 min on one GPU)
#   make docker-clean     remove exited run containers and untagged images replaced by rebuilds
#
# FORCE=1 rebuilds the base image / refreshes a wheelhouse. DOCKER_RUN_ARGS adds `tfparity run`
# options (e.g. --memory-limit 4g --timeout 900). GPUS=0,1 names the GPUs each GPU container gets
# (explicit device ids; one GPU per run by default, never all).
DOCKER_DATASET ?= $(if $(DATASET),$(DATASET),mnist)
DOCKER_RUN_ARGS ?=
DOCKER_PY ?= $(PY)
GPUS ?=
GPUS_ARG = $(if $(GPUS),--gpus $(GPUS))
GPU_CHECK_DIR ?= $(RESULTS_DIR)/gpu-check/$(shell date -u +%Y%m%dT%H%M%SZ)

.PHONY: base-image wheelhouse wheelhouse-gpu image-cpu image-gpu bench-cpu probe-cpu bench-gpu \
        bench-gpu-paths gpu-check docker-check docker-clean

base-image:
	bash docker/build-base-image.sh $(if $(FORCE),--force)

wheelhouse: install
	PYTHON=$(abspath $(DOCKER_PY)) bash docker/make-wheelhouse.sh --device cpu $(if $(FORCE),--force)

wheelhouse-gpu: install
	PYTHON=$(abspath $(DOCKER_PY)) bash docker/make-wheelhouse.sh --device gpu $(if $(FORCE),--force)

image-cpu: install base-image wheelhouse
	$(TFPARITY) docker build --device cpu

# Offline like the CPU image: the wheels come from the host's wheelhouse, the build has no network.
image-gpu: install base-image wheelhouse-gpu
	$(TFPARITY) docker build --device gpu

docker-check: install
	$(TFPARITY) docker check

bench-cpu: install
	$(TFPARITY) run --backend docker --device cpu --suite seed --dataset $(DOCKER_DATASET) \
	  $(if $(SEEDS),--seeds $(SEEDS)) --results-dir $(RESULTS_DIR) $(DOCKER_RUN_ARGS)

probe-cpu: install
	$(TFPARITY) run --backend docker --device cpu --suite seed --mode probe --dataset $(DOCKER_DATASET) \
	  $(if $(SEEDS),--seeds $(SEEDS)) --results-dir $(RESULTS_DIR) $(DOCKER_RUN_ARGS)

# The GPU check first: TensorFlow in the GPU image must see and use the GPU; else one line naming
# the cause (toolkit, driver, libraries) and nothing starts.
bench-gpu: install
	@$(TFPARITY) docker check-gpu $(GPUS_ARG)
	$(TFPARITY) run --backend docker --device gpu --suite seed --dataset $(DOCKER_DATASET) \
	  $(if $(SEEDS),--seeds $(SEEDS)) --results-dir $(RESULTS_DIR) $(GPUS_ARG) $(DOCKER_RUN_ARGS)

bench-gpu-paths: install
	@$(TFPARITY) docker check-gpu $(GPUS_ARG)
	TFPARITY="$(TFPARITY)" DATASET=$(DOCKER_DATASET) SEEDS=$(SEEDS) GPUS=$(GPUS) EXTRA="$(DOCKER_RUN_ARGS)" \
	  bash docker/gpu-paths.sh $(RESULTS_DIR)

gpu-check: install
	@TFPARITY="$(TFPARITY)" PY=$(PY) GPUS=$(GPUS) bash docker/gpu-check.sh $(GPU_CHECK_DIR)

# Exited run containers, then the untagged images that rebuilds replaced (only tfparity's: they
# carry its source-hash label), then the GPU dependency images (6 GB each) that tfparity:gpu no
# longer uses (a refreshed GPU wheelhouse makes a new one). Never a running container.
docker-clean:
	@for service in bench-cpu bench-gpu; do \
	  ids=$$(docker ps -aq --filter label=com.docker.compose.service=$$service --filter status=exited \
	         --filter status=created); \
	  if [ -n "$$ids" ]; then docker rm -f $$ids; fi; \
	done
	docker image prune -f --filter label=org.tfparity.source-hash
	@keep=$$(docker image inspect -f '{{index .Config.Labels "org.tfparity.gpu-deps"}}' tfparity:gpu 2>/dev/null); \
	for tag in $$(docker images --format '{{.Repository}}:{{.Tag}}' tfparity-gpu-deps); do \
	  if [ "$$tag" != "$$keep" ]; then docker rmi "$$tag" || echo "docker-clean: $$tag is still in use"; fi; \
	done
