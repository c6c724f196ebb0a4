#!/usr/bin/env bash
# Builds and runs the libFuzzer target for the TensorRT plugin's field parser with ASan and
# UBSan (clang + libFuzzer from Debian: clang, libclang-rt-14-dev). Default 3,000,000 inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3000000}
out=${FUZZ_OUT:-build-fuzz}
mkdir -p "$out/corpus"
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iplugin \
  fuzz/plugin_fields_fuzz.cpp plugin/w4a8_plugin_core.cpp -o "$out/plugin_fields_fuzz"
"$out/plugin_fields_fuzz" -runs="$runs" -max_len=256 -print_final_stats=1 "$out/corpus" 2>&1 | tail -15
