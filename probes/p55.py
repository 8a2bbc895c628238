"""p55 (perf-notes v53): sddmm_grouped.cu's float32 bs 8 pairs on SOFF (the default) against
KS16 (two 8-deep steps' six products in one fresh tile; SASS main loop 12.78 -> 12.34
instructions a tensor-core instruction at M = 4096, -3.4%; 14.56 -> 14.09 at M = 64), also
with 64-row steps: wgrad ms alternated twice, the time over x @ W's, error against float64.
Random and Barabasi-Albert at M = 4096, C = K = 8192; random at M = 64, C = K = 16384.

    PYTHONPATH=.:probes python3 probes/p55.py
"""
from _common import free, grouped_knobs, problem, say, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())

ab = [("default", grouped_knobs({})), ("KS16", grouped_knobs({"KS16": 1})),
      ("KS16 MK64", grouped_knobs({"KS16": 1, "MK": 64}))]
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab if M > 512 else ab[:2], f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)
