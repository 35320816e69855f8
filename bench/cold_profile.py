"""Where a second process's time to first result goes (issue 3: cold, target >= 5x).

    python bench/cold_profile.py [--top 30] [--hide-scipy]

Runs engine.py's cold script once in a fresh cache directory (the first process compiles),
then once more under cProfile (the second loads from the disk cache) and prints both times
and the profile's largest cumulative entries. `--hide-scipy` runs the processes as if SciPy
were not installed: Numba imports scipy.linalg when it loads its first kernel (its BLAS
check, numba/np/arraymath.py), and that import was most of the second process on the GPU
host (bench/NOTES.md).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from engine import COLD_SCRIPT

PROFILED = """
import cProfile, pstats, io
prof = cProfile.Profile()
prof.enable()
exec(compile({script!r}, "cold", "exec"))
prof.disable()
out = io.StringIO()
pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats({top})
print(out.getvalue())
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--hide-scipy", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        env["NUMLAZY_CACHE_DIR"] = cache_dir
        if args.hide_scipy:                  # a `scipy` whose import fails, first on the path
            stub = os.path.join(cache_dir, "no-scipy", "scipy")
            os.makedirs(stub)
            with open(os.path.join(stub, "__init__.py"), "w") as f:
                f.write("raise ImportError('hidden by bench/cold_profile.py --hide-scipy')\n")
            env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(stub)] + [
                p for p in [env.get("PYTHONPATH")] if p])
        for name, script in (("first", COLD_SCRIPT), ("second", COLD_SCRIPT),
                             ("second, profiled", PROFILED.format(script=COLD_SCRIPT,
                                                                  top=args.top))):
            out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                 capture_output=True, text=True).stdout
            print(f"== {name} process: seconds, disk cache hits = {out.split()[:2]}")
            if "profiled" in name:
                print(out)


if __name__ == "__main__":
    main()
