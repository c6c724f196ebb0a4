"""Machine-code properties of the built library that no result can show, only the time:
scripts/check_pdl_order.py (every mma decode kernel issues its first batch of weights before
it waits for its programmatic predecessor; ptxas had moved the wait above them in every one,
session 19). Static: runs without a GPU (CI), skips where no cuobjdump or no sm_90 image."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import check_pdl_order  # noqa: E402


def test_mma_kernels_load_weights_before_the_pdl_wait():
    lib = os.environ.get("W4A8_LIBRARY", str(REPO / "build" / "libw4a8.so"))
    if not Path(lib).exists():
        pytest.skip(f"no built library at {lib} (set W4A8_LIBRARY)")
    if not check_pdl_order.find_cuobjdump():
        pytest.skip("no cuobjdump (PATH, /usr/local/cuda/bin, Triton's wheel)")
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_pdl_order.py"), lib], capture_output=True,
                       text=True)
    if r.returncode == 2 and "no mma kernel with ACQBULK" in r.stdout:
        pytest.skip(f"no sm_90+ mma kernel in {lib}")
    assert r.returncode == 0, r.stdout + r.stderr


# The checker itself, on made-up cuobjdump text: a kernel whose wait comes first must fail.
def _sass(name, body):
    lines = [f"        Function : {name}"]
    lines += [f"        /*{16 * i:04x}*/                   {x} ;" for i, x in enumerate(body)]
    return "\n".join(lines) + "\n"


_LOADS = ["LDG.E.NA.128.CONSTANT R24, desc[UR10][R6.64]"] * 4 + ["LDG.E.U16.CONSTANT R5, desc[UR10][R8.64]"] * 4
_NAME = "_ZN4w4a87kernels16mma_exact_kernelILi16ELi1ELi2ELi4ELi16ELi1ELb1EEEvNS0_10GemmParamsEl"


def test_checker_passes_loads_then_wait_and_fails_wait_then_loads():
    good = _sass(_NAME, ["S2R R0, SR_TID.X"] + _LOADS + ["ACQBULK", "EXIT"])
    bad = _sass(_NAME, ["ACQBULK"] + _LOADS + ["EXIT"])
    assert check_pdl_order.check(good) == (1, [])
    checked, problems = check_pdl_order.check(bad)
    assert checked == 1 and len(problems) == 1 and "0 weight / 0 scale" in problems[0]
    # a wgmma kernel and a kernel without programmatic launch (sm_80) are not checked
    assert check_pdl_order.check(_sass("_ZN4w4a87kernels18wgmma_exact_kernelIEEv", ["ACQBULK"]))[0] == 0
    assert check_pdl_order.check(_sass(_NAME, _LOADS + ["EXIT"]))[0] == 0
