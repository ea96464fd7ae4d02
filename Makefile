# The two commands at the top of the README: `make grade` and `make test`.
# Both build the virtual environment first, from nothing, when it is missing or stale.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
SYSTEM_PYTHON := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
A ?=
S ?=
JOBS ?= 2

.PHONY: all venv sysdeps grade test lint release bench docker docker-gpu clean

all: test

# A venv made from the system Python can be run by the unprivileged sandbox user
# (a pyenv build under /root cannot), which the `isolated` level needs.
$(STAMP): pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PY) -m pip install --quiet -e '.[course,dev]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	touch $(STAMP)

venv: $(STAMP)

# bubblewrap: the workers' allowlist view of the machine (grader/sandbox/bwrap.py). Installed
# when we are root on Debian/Ubuntu; elsewhere the grader reports the fallback it uses.
sysdeps:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap) \
	  >/dev/null 2>&1; } || echo "make: bubblewrap is not installed; workers get the fallback sandbox"

grade: $(STAMP) sysdeps
ifeq ($(A),)
	@for dir in examples/submissions/*/; do \
	  a=$$(basename $$dir); echo "== $$a"; \
	  $(PY) -m grader.cli grade $$a $$dir --jobs $(JOBS) --out out/$$a || exit 1; \
	done
else
	$(PY) -m grader.cli grade $(A) $(if $(S),$(S),examples/submissions/$(A)) --jobs $(JOBS)
endif

lint: $(STAMP)
	$(PY) -m ruff check grader tests reference

test: $(STAMP) sysdeps lint
	$(PY) -m pytest tests/engine -q -ra --durations=15
	$(PY) -m grader.cli release --check

release: $(STAMP)
	$(PY) -m grader.cli release

clean:
	rm -rf out build *.egg-info

bench: $(STAMP) sysdeps
	$(PY) -m grader.bench

# The grading image. Without a reachable engine, start one (root: installs docker.io and
# debootstrap, builds a Debian base image locally; nothing is pulled).
IMAGE ?= dlgrader:latest
BASE_IMAGE ?= dlgrader-base:bookworm
# The CPU build of torch goes into the image when a wheel of it is on this machine's disk
# (TORCH_WHEELS; here /opt/wheels holds torch-*+cpu); otherwise GRADER_TORCH=cpu fetches it.
TORCH_WHEELS ?= /opt/wheels
ENGINE ?= docker/start-engine.sh
docker: $(STAMP)
	@mkdir -p build && BASE_IMAGE=$(BASE_IMAGE) bash $(ENGINE) >build/docker-engine.env || \
	  { echo "make: no Docker engine: $(ENGINE) said why above" >&2; exit 1; }
	rm -rf build/docker && mkdir -p build/docker/wheels
	cp $(TORCH_WHEELS)/torch-*+cpu-cp311-*.whl build/docker/wheels/ 2>/dev/null || \
	  echo "make: no CPU torch wheel in $(TORCH_WHEELS): the image has no torch (GRADER_TORCH=cpu)"
	$(PY) -m grader.cli gradescope --layout build/docker/source
	# every wheel the image needs, fetched here, so that the build itself reaches no network
	torch="$$(ls build/docker/wheels/torch-*.whl 2>/dev/null)"; [ -z "$$torch" ] || \
	  $(PY) -m pip download --quiet --dest build/docker/wheels \
	    -r build/docker/source/requirements.txt "$$torch" 2>&1 | \
	  { grep -v 'is ignored: it is neither' || true; }
	. build/docker-engine.env && \
	  docker build --network host -f docker/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	    -t $(IMAGE) build/docker && \
	  docker image prune -f >/dev/null

# For GPU hosts (documented, not built here: it needs a CUDA base image from a registry and a
# GPU to test on): the same image on NVIDIA's CUDA runtime, torch's default (CUDA) build from
# PyPI. Run containers with `--gpus all`; grade with `grader grade ... --device cuda`.
GPU_BASE_IMAGE ?= nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
docker-gpu: $(STAMP)
	rm -rf build/docker && mkdir -p build/docker/wheels
	$(PY) -m grader.cli gradescope --layout build/docker/source
	docker build --network host -f docker/Dockerfile --build-arg BASE_IMAGE=$(GPU_BASE_IMAGE) \
	  --build-arg GRADER_TORCH=cuda -t $(IMAGE:latest=gpu) build/docker
