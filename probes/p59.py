"""p59 (perf-notes v54): SDDMM_GROUPED_TAIL on the other grouped sddmm launches (every
grouped / grouped_tma wgrad takes it, not only float32 bs 8): default against TAIL,
alternated twice, on random and Barabasi-Albert at M = 4096, C = K = 8192, for each dtype at
bs 8 and 16 (the kernel kind named per line).

    PYTHONPATH=.:probes python3 probes/p59.py
"""
from _common import free, problem, say, spec_flags, wgrad_ab
from cupy_bsparse import _specs, bench

say(bench.gpu_name())
DID = {"float32": 0, "float16": 1, "bfloat16": 2}

for bs in (8, 16):
    for dtype in ("float16", "bfloat16", "float32"):
        for kind in ("random", "barabasi_albert"):
            if bs == 8 and dtype == "float32":
                continue                       # p57 / p58
            sets = problem(4096, 8192, 8192, bs, dtype, kind=kind)
            wgrad_ab(sets, [("default", spec_flags(SDDMM_GROUPED_TAIL="0")),
                            ("TAIL", spec_flags(SDDMM_GROUPED_TAIL="1"))],
                     f"{kind} {dtype} bs {bs} ({_specs.sddmm_kernel(bs, DID[dtype], 4096)})")
            free(sets)
