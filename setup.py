"""Builds libw4a8.so with CMake and ships it inside the `w4a8` package (one `pip install .`).

Set W4A8_CUDA_ARCHS (default 90a) to choose GPU architectures, or W4A8_SKIP_BUILD=1 to skip
the build (the package then finds the library through W4A8_LIBRARY or the repo's build/).
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithCMake(build_py):
    def run(self):
        super().run()
        if os.environ.get("W4A8_SKIP_BUILD"):
            return
        build = ROOT / "build-py"
        archs = os.environ.get("W4A8_CUDA_ARCHS", "90a")
        subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(build), f"-DW4A8_CUDA_ARCHS={archs}",
                               "-DW4A8_BUILD_TESTS=OFF", "-DW4A8_BUILD_TOOLS=OFF", "-DW4A8_BUILD_BENCH=OFF"])
        subprocess.check_call(["cmake", "--build", str(build), "--target", "w4a8", "-j", str(os.cpu_count() or 2)])
        dest = Path(self.build_lib) / "w4a8"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "libw4a8.so", dest / "libw4a8.so")  # the SONAME link target, resolved


setup(cmdclass={"build_py": BuildWithCMake})
