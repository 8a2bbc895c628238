"""p53 (perf-notes v52): sddmm_grouped.cu's float32 bs 8 pairs with SADDR (fragment loads from
shared-window addresses: one base register a row set, constant offsets; SASS main loop 15.02 ->
13.61 instructions a tensor-core instruction at M = 4096, -9.4%) and SOFF (that, and the units'
codes as byte offsets from the table: 12.78, -15%) against the default, on top of TF32_REDO:
wgrad ms alternated twice, the blocks compared bitwise, and the time over x @ W's.
Random and Barabasi-Albert at M = 4096, C = K = 8192; random at M = 64, C = K = 16384.

    PYTHONPATH=.:probes python3 probes/p53.py
"""
from _common import free, grouped_knobs, problem, say, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())

ab = [("default", grouped_knobs({})), ("SADDR", grouped_knobs({"SADDR": 1})),
      ("SOFF", grouped_knobs({"SOFF": 1}))]
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)
