"""p58 (perf-notes v54): where SDDMM_GROUPED_TAIL (the last two waves of grouped sddmm items
longest first) loses. p57 had it 4-5% slower on small world at M = 4096 (1.81 -> 1.90 ms) while
it gained 3.5-5% on random and Barabasi-Albert. Here default / TPAIRS / both / TPAIRS + TAIL
off on small world at M = 1024, 4096 and 16384 and on random / Barabasi-Albert at M = 1024,
alternated twice (wgrad_ab), float32 bs 8, C = K = 8192.

    PYTHONPATH=.:probes python3 probes/p58.py
"""
from _common import free, problem, say, spec_flags, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())


def switches(two_way, tail):
    return spec_flags(TWO_WAY_PAIRS=two_way, SDDMM_GROUPED_TAIL=tail)


ab = [("default", switches("0", "0")), ("TAIL", switches("0", "1")),
      ("TPAIRS", switches("1", "0")), ("both", switches("1", "1"))]
for kind, M in [("small_world", 4096), ("small_world", 1024), ("small_world", 16384),
                ("random", 1024), ("barabasi_albert", 1024), ("random", 16384)]:
    sets = problem(M, 8192, 8192, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C 8192")
    free(sets)
