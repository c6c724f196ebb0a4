#!/usr/bin/env bash
# Copies Debian's GoogleTest sources into .deps/googletest (git-ignored) so that a GPU
# machine without GoogleTest can build the test suites from them (scripts/gpu-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/src/googletest
[ -d "$src" ] || { apt-get update -qq && apt-get install -y -qq googletest >/dev/null; }
rm -rf .deps/googletest && mkdir -p .deps && cp -r "$src" .deps/googletest
echo "GoogleTest sources in .deps/googletest"
