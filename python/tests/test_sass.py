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
