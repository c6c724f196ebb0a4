// `w4a8`: the command-line front end. Every subcommand goes through the public API.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gemm_check.hpp"
#include "w4a8/formats.hpp"
#include "w4a8/reference.hpp"
#include "w4a8/w4a8.h"

namespace {

const char* kUsage =
    "usage: w4a8 <command> [options]\n"
    "\n"
    "commands:\n"
    "  info                          library version, build architectures, GPU\n"
    "  check M N K [--group G] [--seed S] [--cpu]\n"
    "                                random W4A8 GEMM vs the exact CPU reference (and the\n"
    "                                unquantized BF16 product), timed; PASSED/FAILED\n"
    "  kernel M N K [--group G]      name of the kernel the dispatcher picks\n"
    "  quantize IN.bf16 N K OUT [--group G]\n"
    "                                raw row-major BF16 [N, K] -> NVFP4 files OUT.packed\n"
    "                                ([N, K/2] uint8), OUT.scales ([N, K/G] E4M3), OUT.s2\n"
    "                                (FP32), ModelOpt recipe (CPU reference, bit-exact\n"
    "                                with the GPU quantizer)\n"
    "  dequantize IN N K OUT.bf16 [--group G]\n"
    "                                NVFP4 files IN.{packed,scales,s2} -> raw BF16 [N, K]\n"
    "  --help                        this text\n"
    "\n"
    "Safetensors checkpoints: use the Python package (python -m w4a8 quantize ...).\n";

bool read_file(const std::string& path, std::vector<char>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

bool write_file(const std::string& path, const void* data, size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return static_cast<bool>(f);
}

int option_int(int argc, char** argv, const char* name, int fallback) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 0; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

int fail(const char* what) {
  std::fprintf(stderr, "w4a8: %s\n", what);
  return 1;
}

int fail_status(w4a8_status s) {
  std::fprintf(stderr, "w4a8: %s: %s\n", w4a8_status_string(s), w4a8_last_error());
  return 1;
}

// Which kernel families serve the current device (or, without one, an H100 with this build).
void print_kernels(const char* indent) {
  const char* name = nullptr;
  const bool wgmma = w4a8_gemm_kernel_name(968, 16384, 2048, 16, W4A8_KERNEL_WGMMA_EXACT, &name) == W4A8_STATUS_SUCCESS;
  w4a8_gemm_kernel_name(1, 16384, 2048, 16, W4A8_KERNEL_AUTO, &name);
  std::printf("%sdecode (M=1, 16384x2048): %s\n", indent, name);
  w4a8_gemm_kernel_name(968, 16384, 2048, 16, W4A8_KERNEL_AUTO, &name);
  std::printf("%sprefill (M=968, 16384x2048): %s%s\n", indent, name,
              wgmma ? "" : " (the sm_90a wgmma kernel is not available here)");
}

int cmd_info() {
  std::printf("w4a8 %s\n", w4a8_version());
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    std::printf("GPU: none found (the CPU reference path is available); on an H100 this build would run:\n");
    print_kernels("  ");
    return 0;
  }
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, d);
    std::printf("GPU %d: %s, sm_%d%d, %d SMs, %.0f MB L2\n", d, p.name, p.major, p.minor, p.multiProcessorCount,
                p.l2CacheSize / 1e6);
    if (cudaSetDevice(d) == cudaSuccess) print_kernels("  ");
  }
  return 0;
}

int cmd_quantize(int argc, char** argv) {
  if (argc < 6) return fail("quantize needs IN.bf16 N K OUT");
  const int64_t N = std::atoll(argv[3]), K = std::atoll(argv[4]);
  const int g = option_int(argc, argv, "--group", 16);
  std::vector<char> raw;
  if (!read_file(argv[2], &raw)) return fail("cannot read input file");
  if (N <= 0 || K <= 0 || static_cast<int64_t>(raw.size()) != N * K * 2)
    return fail(("input has " + std::to_string(raw.size()) + " bytes, expected N*K*2 = " +
                 std::to_string(N * K * 2)).c_str());
  std::vector<uint16_t> w(N * K);
  std::memcpy(w.data(), raw.data(), raw.size());
  std::vector<uint8_t> packed(N * K / 2), scales(K % g == 0 ? N * K / g : 0);
  float s2 = 0;
  const w4a8_status st = w4a8::ref::quantize_weight_nvfp4(w.data(), N, K, g, packed.data(), scales.data(), &s2);
  if (st != W4A8_STATUS_SUCCESS) return fail_status(st);
  const std::string out = argv[5];
  if (!write_file(out + ".packed", packed.data(), packed.size()) ||
      !write_file(out + ".scales", scales.data(), scales.size()) || !write_file(out + ".s2", &s2, 4))
    return fail("cannot write output files");
  std::printf("wrote %s.packed (%zu B), %s.scales (%zu B), %s.s2 (s2 = %g)\n", out.c_str(), packed.size(),
              out.c_str(), scales.size(), out.c_str(), s2);
  return 0;
}

int cmd_dequantize(int argc, char** argv) {
  if (argc < 6) return fail("dequantize needs IN N K OUT.bf16");
  const std::string in = argv[2];
  const int64_t N = std::atoll(argv[3]), K = std::atoll(argv[4]);
  const int g = option_int(argc, argv, "--group", 16);
  std::vector<char> packed, scales, s2;
  if (!read_file(in + ".packed", &packed) || !read_file(in + ".scales", &scales) || !read_file(in + ".s2", &s2))
    return fail("cannot read IN.packed / IN.scales / IN.s2");
  if (N <= 0 || K <= 0 || K % g != 0 || static_cast<int64_t>(packed.size()) != N * K / 2 ||
      static_cast<int64_t>(scales.size()) != N * K / g || s2.size() != 4)
    return fail("file sizes do not match N, K and the group size");
  float ts;
  std::memcpy(&ts, s2.data(), 4);
  std::vector<float> w(N * K);
  const w4a8_status st = w4a8::ref::dequantize_weight_nvfp4(reinterpret_cast<const uint8_t*>(packed.data()),
                                                           reinterpret_cast<const uint8_t*>(scales.data()), ts, N,
                                                           K, g, w.data());
  if (st != W4A8_STATUS_SUCCESS) return fail_status(st);
  std::vector<uint16_t> out(N * K);
  for (size_t i = 0; i < out.size(); ++i) out[i] = w4a8::float_to_bf16(w[i]);
  if (!write_file(argv[5], out.data(), out.size() * 2)) return fail("cannot write output file");
  std::printf("wrote %s (%lld x %lld BF16)\n", argv[5], (long long)N, (long long)K);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h")) {
    std::printf("%s", kUsage);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "info") return cmd_info();
  if (cmd == "check" || cmd == "kernel") {
    if (argc < 5) return fail("needs M N K");
    w4a8::tools::CheckOptions o;
    o.M = std::atoll(argv[2]);
    o.N = std::atoll(argv[3]);
    o.K = std::atoll(argv[4]);
    o.group = option_int(argc, argv, "--group", 16);
    o.seed = static_cast<uint64_t>(option_int(argc, argv, "--seed", 1));
    o.force_cpu = has_flag(argc, argv, "--cpu");
    if (cmd == "check") return w4a8::tools::run_gemm_check(o);
    const char* name = nullptr;
    const w4a8_status st = w4a8_gemm_kernel_name(o.M, o.N, o.K, o.group, W4A8_KERNEL_AUTO, &name);
    if (st != W4A8_STATUS_SUCCESS) return fail_status(st);
    std::printf("%s\n", name);
    return 0;
  }
  if (cmd == "quantize") return cmd_quantize(argc, argv);
  if (cmd == "dequantize") return cmd_dequantize(argc, argv);
  std::fprintf(stderr, "w4a8: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
