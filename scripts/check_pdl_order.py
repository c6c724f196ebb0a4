#!/usr/bin/env python3
"""Check, in the SASS of a built library, that every mma decode kernel issues its first batch of
weight loads before it waits for its programmatic predecessor.

Why: the kernel loads one batch of weights and block scales, then calls griddepcontrol.wait
(SASS ACQBULK), so that a GEMM launched as a programmatic dependent (the fused BF16 entry
point after its quantizer, an `overlap` weight after the previous layer) has weights in flight
while it waits. ptxas may hoist the wait above independent non-coherent loads; it did, in every
mma kernel, until common.cuh's pdl_wait_after_loads (session 19). Nothing in a test's results
shows that (only the time), so this reads the machine code.

    scripts/check_pdl_order.py build/libw4a8.so [--cuobjdump PATH]

cuobjdump: --cuobjdump, else PATH, /usr/local/cuda/bin, or the copy in Triton's wheel (which
PyTorch installs; CI has no other). python/tests/test_sass.py runs this in the test suite.

Exit 0 when every sm_90+ mma kernel has, before its first ACQBULK, the first batch's four
16- or 8-byte weight loads (two row pieces x two chunks or two row tiles, see gemm_mma.cu)
and its four block-scale loads; 1 otherwise (the offending kernels are listed); 2 when no
kernel was found (wrong file, or no cuobjdump).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys


def functions(sass: str):
    """{function name: [instruction text]} of cuobjdump -sass output."""
    out, cur = {}, None
    for line in sass.splitlines():
        m = re.match(r"\s+Function : (\S+)", line)
        if m:
            cur = m.group(1)
            out[cur] = []
            continue
        m = re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(.*?);", line)
        if m and cur:
            out[cur].append(m.group(1).strip())
    return out


def find_cuobjdump():
    for c in (shutil.which("cuobjdump"), "/usr/local/cuda/bin/cuobjdump"):
        if c and os.access(c, os.X_OK):
            return c
    try:
        import triton  # noqa: F401  (its NVIDIA backend ships cuobjdump)
        c = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
        if os.access(c, os.X_OK):
            return c
    except Exception:
        pass
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", help="libw4a8.so (or a .cubin)")
    ap.add_argument("--cuobjdump", default=None)
    args = ap.parse_args()
    args.cuobjdump = args.cuobjdump or find_cuobjdump()
    if not args.cuobjdump:
        print("check_pdl_order: no cuobjdump (PATH, /usr/local/cuda/bin, Triton's wheel)")
        return 2
    try:
        sass = subprocess.run([args.cuobjdump, "-sass", args.library], check=True, capture_output=True,
                              text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"check_pdl_order: cannot disassemble {args.library} with {args.cuobjdump}: {e}")
        return 2
    checked, bad = check(sass)
    if checked == 0:
        print(f"check_pdl_order: no mma kernel with ACQBULK in {args.library}")
        return 2
    for b in bad:
        print("check_pdl_order:", b)
    print(f"check_pdl_order: {checked - len(bad)} of {checked} mma kernels issue their first batch before the wait")
    return 1 if bad else 0


def check(sass: str):
    """(kernels checked, [what is wrong with each failing one]) of cuobjdump -sass text."""
    checked, bad = 0, []
    for name, ins in functions(sass).items():
        if not re.search(r"(?<!wg)mma_exact_kernel", name):
            continue
        waits = [i for i, x in enumerate(ins) if re.search(r"\bACQBULK\b", x)]
        if not waits:
            continue  # an architecture without programmatic dependent launch
        checked += 1
        first = waits[0]
        weights = sum(1 for x in ins[:first] if re.search(r"\bLDG\.E\.NA\.(128|64)\b", x))
        scales = sum(1 for x in ins[:first] if re.search(r"\bLDG\.E\.(U8|U16)\.CONSTANT\b", x))
        if weights < 4 or scales < 4:
            bad.append(f"{name}: {weights} weight / {scales} scale loads before ACQBULK (want 4 / 4)")
    return checked, bad


if __name__ == "__main__":
    sys.exit(main())
