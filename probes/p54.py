"""p54 (perf-notes v53): sddmm_grouped.cu's float32 bs 8 pairs on SOFF (the default since v53):
item shapes at M = 4096 (steps, stages, group width), wgrad ms alternated, bitwise checked.
P54=2 times the second set (group and x widths, 64-row steps, blocks an item, 8 warps).

    PYTHONPATH=.:probes python3 probes/p54.py
"""
import os

from _common import free, grouped_knobs, problem, say, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())

SETS = {"1": [("MK16 S3", {"MK": 16, "STAGES": 3}), ("MK16 S4", {"MK": 16, "STAGES": 4}),
              ("MK32 S3", {"MK": 32, "STAGES": 3}), ("R32", {"R": 32}), ("NBLK128", {"NBLK": 128})],
        "2": [("R128", {"R": 128}), ("NCX16", {"NCX": 16}), ("NCX64", {"NCX": 64}),
              ("MK64 S2", {"MK": 64}), ("NBLK512", {"NBLK": 512}), ("NW8", {"NW": 8})]}
ab = [("default", grouped_knobs({}))] + [(name, grouped_knobs(k))
                                          for name, k in SETS[os.environ.get("P54", "1")]]
for kind in ("random", "barabasi_albert"):
    sets = problem(4096, 8192, 8192, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M 4096")
    free(sets)
