#!/usr/bin/env bash
# Packs what a GPU call needs from this machine's build into build/carry.tgz (the device tool
# carries at most 64 MiB; a stripped build is ~20 MB): the library, the bench helper library,
# the test binaries (GoogleTest linked statically, so the GPU machine needs none), the seed's
# test program and the probes. Optional variants -- the same library built from another commit
# or with a patch applied -- go in as build/v/<name>/, where scripts/ab-bench.sh (NEW= / BASE=)
# and scripts/ab-sweep.sh (VARIANTS=) find them.
#
#   make -C build -j16 && scripts/carry.sh                      # main's build only
#   scripts/carry.sh base=HEAD~1 bm192=bench/experiments/s26-exact-bm192.patch
#       (NAME=COMMIT: the library at that commit; NAME=FILE.patch: HEAD's with the patch applied)
#   VARIANT_TESTS=1 scripts/carry.sh t3d=...patch   # also the variant's GPU test binary, as
#       build/v/<name>/w4a8_gpu_tests (the tests link the library statically, so a variant's
#       kernels are only tested by its own binary)
#
# Then, on the GPU machine (run with carry ["build/carry.tgz"]):
#   tar -xzf build/carry.tgz && (cd build && ln -sf libw4a8.so.0.1.0 libw4a8.so.0 && ln -sf libw4a8.so.0 libw4a8.so)
#   BUILD=build scripts/gpu-check.sh test seed bench
# Variants are built with the CMake defaults of a Release sm_90a build (the library only).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/build/tests" "$STAGE/build/tools" "$STAGE/build/bench"
for f in libw4a8.so.0.1.0 libw4a8_bench.so; do cp "$BUILD/$f" "$STAGE/build/"; done
for t in w4a8_cpu_tests w4a8_gpu_tests w4a8_plugin_core_tests; do cp "$BUILD/tests/$t" "$STAGE/build/tests/"; done
cp "$BUILD/tools/test_w4a8_gemm" "$STAGE/build/tools/"
cp "$BUILD"/bench/w4a8_probe_* "$STAGE/build/bench/" 2>/dev/null || true

for spec in "$@"; do
  name=${spec%%=*} what=${spec#*=}
  [ "$name" != "$spec" ] && [ -n "$name" ] || { echo "variant '$spec': expected NAME=COMMIT or NAME=FILE.patch" >&2; exit 2; }
  tree=$(mktemp -d)
  if [[ "$what" == *.patch ]]; then
    git worktree add -f --detach "$tree" HEAD >/dev/null
    git -C "$tree" apply "$ROOT/$what"
  else
    git worktree add -f --detach "$tree" "$what" >/dev/null
  fi
  cmake -S "$tree" -B "$tree/build" -DCMAKE_BUILD_TYPE=Release -DW4A8_CUDA_ARCHS=90a >/dev/null
  make -C "$tree/build" -j"$(nproc)" w4a8 >/dev/null
  mkdir -p "$STAGE/build/v/$name"
  if [ "${VARIANT_TESTS:-0}" = 1 ]; then
    make -C "$tree/build" -j"$(nproc)" w4a8_gpu_tests >/dev/null
    cp "$tree/build/tests/w4a8_gpu_tests" "$STAGE/build/v/$name/"
  fi
  cp "$tree/build/libw4a8.so.0.1.0" "$STAGE/build/v/$name/"
  cp "$BUILD/libw4a8_bench.so" "$STAGE/build/v/$name/"
  git worktree remove --force "$tree"
  echo "variant $name: $what"
done
find "$STAGE/build" -type f \( -name '*.so*' -o -path '*/tests/*' -o -path '*/tools/*' -o -name w4a8_gpu_tests \) -exec strip {} \; 2>/dev/null || true
tar -czf "$BUILD/carry.tgz" -C "$STAGE" build
ls -la "$BUILD/carry.tgz"
