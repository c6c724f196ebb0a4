#!/usr/bin/env bash
# Downloads the pure-Python test tools the GPU machine lacks (pytest and its needs) as wheels
# into .whl (git-ignored); scripts/gpu-check.sh installs them there with --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl pytest pluggy iniconfig
ls .whl
