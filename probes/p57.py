"""p57 (perf-notes v53): float32 bs 8 wgrad (sddmm_grouped.cu pairs on SOFF, the default)
against TWO_WAY_PAIRS (TPAIRS, its units from the walk of each item's graph: warp rounds at
M = 4096 random -12.6%, Barabasi-Albert -16.4%), SDDMM_GROUPED_TAIL (the last two waves of
items longest first: a launch model gives busy SMs 0.93 -> 0.96 random, 0.87 -> 0.98
Barabasi-Albert) and both: wgrad ms alternated twice, the time over x @ W's, error against
float64, bitwise against the default. Random, Barabasi-Albert and small world at M = 4096,
C = K = 8192; random at M = 64, C = K = 16384 (in v54's run its TPAIRS by the two vectorised
passes, past the walk's limit then, and "both walk" by the walk; since then
``_work_lists._forest_pairs`` gives the walk's unit count at every size, so that variant is
gone). Then, with ``rows``, the float32 bs 8 bench
rows with both set, into $OUT/p57_<layout>.

    PYTHONPATH=.:probes python3 probes/p57.py [rows]
"""
import os
import sys

from _common import free, problem, reset, say, spec_flags, wgrad_ab
from cupy_bsparse import bench
from cupy_bsparse.__main__ import main

say(bench.gpu_name())


def switches(two_way, tail):
    return spec_flags(TWO_WAY_PAIRS=two_way, SDDMM_GROUPED_TAIL=tail)


ab = [("default", switches("0", "0")), ("TPAIRS", switches("1", "0")),
      ("TAIL", switches("0", "1")), ("both", switches("1", "1"))]
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192),
                   ("small_world", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)
if sys.argv[1:] == ["rows"]:
    out = os.environ.get("OUT", "gpu_out")
    with switches("1", "1")():
        reset()                        # the launches cached under the defaults
        for lay in ("random", "barabasi_albert", "small_world"):
            main(["bench", "--m", "4096", "--layout", lay, "--dtype", "float32", "--blocksize",
                  "8", "--baselines", "dense", "--out", f"{out}/p57_{lay}"])
