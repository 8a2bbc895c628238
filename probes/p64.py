"""p64 (perf-notes v57): dsd_grouped_tma.cu's float32 bs 8 consumers under a register cap
(MAXNREG, ``_specs.GROUPED_F32_MAXNREG``) in place of the launch bounds' 96 registers, where
ptxas runs each block's four 3xTF32 chains one after another (p19's timelines: 330 ns + 325 ns
a block a consumer warp). ms fprop / bprop for the cap 112 (the new default), off (the launch
bounds alone, the old default) and 104, alternated twice; sums bitwise the same (err 0).
M = 4096 (C = K = 8192) on random and Barabasi-Albert, M = 64 (C = K = 16384) on random.

    PYTHONPATH=.:probes python3 probes/p64.py
"""
from _common import fprop_bprop, free, patched, problem, say
from cupy_bsparse import _specs, bench

say(bench.gpu_name())
for M, C, kind in ((4096, 8192, "random"), (4096, 8192, "barabasi_albert"), (64, 16384, "random")):
    sets = problem(M, C, C, 8, "float32", kind=kind)
    ref = {}
    for cap in (112, None, 104, 112, None, 104):
        line = fprop_bprop(sets, ref, lambda: patched(_specs, GROUPED_F32_MAXNREG=cap))
        say(f"{kind} float32 bs 8 M {M} MAXNREG {cap}: {line}")
    free(sets)
