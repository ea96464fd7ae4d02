#!/usr/bin/env bash
# Gradescope's setup step (also the Docker image's): a venv at /opt/grader-venv with what grading
# needs, and the autograder source locked against the sandbox's unprivileged uids.
# Works on Gradescope's Ubuntu 22.04 (Python 3.10) and on Debian bookworm (Python 3.11).
# GRADER_WHEELS=DIR installs wheels from DIR first (here: a CPU build of torch from local disk);
# GRADER_TORCH=cpu installs CPU-only torch from PyTorch's index (on Gradescope); cuda: PyPI's.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${GRADER_VENV:-/opt/grader-venv}"
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip
fi
# bubblewrap gives workers the allowlist view where the container may make namespaces (Docker's
# default seccomp profile refuses them: then the trial says so and the uid fallback is used).
if ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q \
    --no-install-recommends bubblewrap) >/dev/null 2>&1 || echo "setup: bubblewrap not installed"
fi
python3 -m venv "$VENV"
# `make docker` brings every wheel in the context: then nothing is fetched (a build that needs no
# network cannot hang on it). Otherwise (Gradescope) pip fetches from PyPI.
if [ -n "${GRADER_WHEELS:-}" ] && ls "$GRADER_WHEELS"/*.whl >/dev/null 2>&1 && \
   "$VENV/bin/python" -m pip install -q --no-index --find-links "$GRADER_WHEELS" \
     -r "$SRC/requirements.txt"; then
  echo "setup: installed from $GRADER_WHEELS alone"
else
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ -n "${GRADER_WHEELS:-}" ] && ls "$GRADER_WHEELS"/*.whl >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install -q "$GRADER_WHEELS"/*.whl
  fi
  if [ "${GRADER_TORCH:-}" = "cpu" ]; then
    "$VENV/bin/python" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  elif [ "${GRADER_TORCH:-}" = "cuda" ]; then  # `make docker-gpu`: PyPI's default build is CUDA's
    "$VENV/bin/python" -m pip install -q torch
  fi
  "$VENV/bin/python" -m pip install -q -r "$SRC/requirements.txt"
fi
chmod -R a+rX "$VENV"
# tests/, reference/ and the engine: readable by root only. The sandbox runs student code as
# leased uids (one per worker, see grader/sandbox/isolation.py: 61000-62999, and from 63000 up in
# `make docker`'s image), which can read none of it.
chown -R root:root "$SRC"
chmod -R go-rwx "$SRC"
chmod 755 "$SRC/run_autograder" "$SRC/setup.sh"
