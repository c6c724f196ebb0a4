# Two commands for a fresh machine (README "Quick start"):
#   make run    build, then a real W4A8 GEMM check + timing (GPU; CPU reference without one)
#   make test   build, then every test suite (GPU tests skip themselves without a GPU)
# Everything is CMake underneath; these targets only fix the flags and the order.
BUILD ?= build
JOBS ?= $(shell nproc)
CUDA_ARCHS ?= 90a
ALL_ARCHS := 80;89;90a;100a;110a;120a
CMAKE_FLAGS ?=

.PHONY: all build run test check-archs clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DW4A8_CUDA_ARCHS="$(CUDA_ARCHS)" $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/tools/test_w4a8_gemm 256 2048 2048

PYTHON ?= python3

# C++ suites through ctest, then the Python suites when PyTorch is importable (CI installs it).
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
	  W4A8_LIBRARY=$(CURDIR)/$(BUILD)/libw4a8.so $(PYTHON) -m pytest -q -rs python/tests; \
	else echo "PyTorch not importable by $(PYTHON): Python suites skipped (see .ci/run for the setup)"; fi

# Compile the library for every architecture the project lists (sm_80 .. sm_120a).
check-archs:
	cmake -S . -B $(BUILD)-archs -DW4A8_CUDA_ARCHS="$(ALL_ARCHS)" -DW4A8_BUILD_TESTS=OFF -DW4A8_BUILD_TOOLS=OFF -DW4A8_BUILD_BENCH=OFF
	cmake --build $(BUILD)-archs -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-archs
