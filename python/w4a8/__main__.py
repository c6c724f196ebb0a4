"""python -m w4a8 quantize IN.safetensors OUT.safetensors [--group 16] [--include GLOB ...] [--device cuda]

Quantizes the 2-D weights of a safetensors checkpoint whose names match the globs (default: the
MLP projections, "*gate_proj.weight", "*up_proj.weight", "*down_proj.weight") to NVFP4 in the
ModelOpt layout (bit-exact with the library's GPU and CPU quantizers), copies every other
tensor unchanged, and writes hf_quant_config.json beside the output. Shows a progress bar.
"""
from __future__ import annotations

import argparse
import fnmatch
import sys
import time

import torch

DEFAULT_INCLUDE = ("*gate_proj.weight", "*up_proj.weight", "*down_proj.weight")


def quantize_file(src: str, dst: str, group_size: int, include, exclude, device: str, out=sys.stderr) -> int:
    from safetensors.torch import load_file

    from .checkpoint import save_modelopt
    from .modules import W4A8Linear

    tensors = load_file(src)
    names = [k for k, v in tensors.items() if v.dim() == 2 and v.is_floating_point()
             and any(fnmatch.fnmatchcase(k, p) for p in include) and not any(fnmatch.fnmatchcase(k, p) for p in exclude)]
    if not names:
        print(f"w4a8: no tensor of {src} matches {list(include)}", file=out)
        return 1
    layers, extra, t0 = {}, {}, time.time()
    for i, name in enumerate(names):
        w = tensors[name]
        if w.shape[1] % group_size:
            print(f"\nw4a8: {name}: in_features {w.shape[1]} is not a multiple of group size {group_size}", file=out)
            return 1
        prefix = name[: -len(".weight")] if name.endswith(".weight") else name
        m = W4A8Linear.from_weight(w.to(device), group_size=group_size).to("cpu")
        bias = tensors.get(prefix + ".bias")
        if bias is not None:
            extra[prefix + ".bias"] = bias
        layers[prefix] = m
        bar = "#" * (30 * (i + 1) // len(names))
        out.write(f"\rw4a8: [{bar:<30}] {i + 1}/{len(names)} {time.time() - t0:6.1f} s")
        out.flush()
    out.write("\n")
    for k, v in tensors.items():
        if k not in names and k not in extra:
            extra[k] = v
    save_modelopt(layers, dst, extra)
    print(f"w4a8: wrote {dst} ({len(layers)} NVFP4 layers, group {group_size}) and hf_quant_config.json", file=out)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m w4a8", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quantize", help="BF16 safetensors -> NVFP4 (ModelOpt layout)")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("--group", type=int, default=16, choices=(16, 32))
    q.add_argument("--include", nargs="*", default=list(DEFAULT_INCLUDE))
    q.add_argument("--exclude", nargs="*", default=[])
    q.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    return quantize_file(args.src, args.dst, args.group, args.include, args.exclude, args.device)


if __name__ == "__main__":
    sys.exit(main())
