"""p53 (perf-notes v52, v53): sddmm_grouped.cu's float32 bs 8 pairs, wgrad ms of three specs on
top of TF32_REDO, alternated twice: SOFF without the two-way pairs (TPAIRS 0; SOFF, the default
since v53: fragment loads from shared-window addresses, one base register a row set and
constant offsets, the units' codes as byte offsets from the table; SASS main loop 15.02 ->
12.78 instructions a tensor-core instruction at M = 4096, -15%), the code before it (SOFF 0,
which takes no two-way pairs) and the default (SOFF with the two-way pairs, v54). The blocks
are compared bitwise with the first's (SOFF 0's sums are the same; the pairs' are in another
order), with the time over x @ W's. v53 also timed SADDR (the loads alone), since removed.
Random and Barabasi-Albert at M = 4096, C = K = 8192; random at M = 64, C = K = 16384.

    PYTHONPATH=.:probes python3 probes/p53.py
"""
from _common import free, grouped_knobs, problem, say, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())

ab = [("SOFF, TPAIRS 0", grouped_knobs({"TPAIRS": 0})),
      ("SOFF 0", grouped_knobs({"SOFF": 0, "TPAIRS": 0})), ("default", grouped_knobs({}))]
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)
