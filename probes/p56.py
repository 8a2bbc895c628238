"""p56 (perf-notes v53): sddmm_grouped.cu's float32 bs 8 pairs on SOFF (the default) against
TPAIRS (units paired two ways, ``_work_lists.two_way_units``: a shared x slot or a shared
column; random d 0.1 at M = 4096 60,710 -> 54,557 units, a warp's unit steps -9.9%; SASS loop
+0.3% an HMMA): wgrad ms alternated twice, the time over x @ W's, error against float64.
Random and Barabasi-Albert at M = 4096, C = K = 8192; random at M = 64, C = K = 16384. Then,
with ``rows``, the float32 bs 8 bench rows with TPAIRS set, into $OUT/p56_<layout>.

    PYTHONPATH=.:probes python3 probes/p56.py [rows]
"""
import os
import sys

from _common import free, grouped_knobs, problem, reset, say, wgrad_ab
from cupy_bsparse import bench
from cupy_bsparse.__main__ import main

say(bench.gpu_name())

ab = [("default", grouped_knobs({})), ("TPAIRS", grouped_knobs({"TPAIRS": 1}))]
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)
if sys.argv[1:] == ["rows"]:
    out = os.environ.get("OUT", "gpu_out")
    with grouped_knobs({"TPAIRS": 1})():
        reset()                        # the launches cached under the default spec
        for lay in ("random", "barabasi_albert"):
            main(["bench", "--m", "4096", "--layout", lay, "--dtype", "float32", "--blocksize",
                  "8", "--baselines", "dense", "--out", f"{out}/p56_{lay}"])
