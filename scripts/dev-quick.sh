#!/usr/bin/env bash
# Scratch script for short device runs during development (not part of the product checks).
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 300 python3 bench/bench.py --build build --ms ${MS:-128,256,968,4096} --no-trace --shapes ${SHAPES:-16384x2048,2048x16384,32768x2048} 2>&1 | grep -v "^$" | tail -40
