"""p61 (perf-notes v55): DMASK on sddmm_grouped.cu's float32 bs 8 wgrad (TPAIRS): each item
copies only the dy column blocks it uses. CPU count (tiles staged a block, M = 4096, C = K =
8192, d 0.1): Barabasi-Albert 0.580 -> 0.512 (-12%), small world 0.486 -> 0.366 (-25%),
random 0.469 -> 0.458 (-2%). Predicted at v54's 70% pass-through of tiles to time:
Barabasi-Albert about -8% (2.44 -> 2.24 ms), small world about -15%, random -1.5%. WIN adds
SDDMM_WINDOWS (the long runs cut by column windows at the same sizes: Barabasi-Albert 0.512
-> 0.484 with DMASK, small world 0.366 -> 0.300, the same warp rounds; about -4% more on
Barabasi-Albert). Default against SDDMM_DMASK "1" and against both, alternated twice; DMASK
alone is bitwise the default's.

    PYTHONPATH=.:probes python3 probes/p61.py
"""
from _common import free, problem, say, spec_flags, wgrad_ab
from cupy_bsparse import bench

say(bench.gpu_name())
VARIANTS = [("default", spec_flags(SDDMM_DMASK="0")), ("DMASK", spec_flags(SDDMM_DMASK="1")),
            ("DMASK+WIN", spec_flags(SDDMM_DMASK="1", SDDMM_WINDOWS="1"))]
for M, C, kind in ((4096, 8192, "barabasi_albert"), (4096, 8192, "random"),
                   (4096, 8192, "small_world"), (1024, 8192, "barabasi_albert"),
                   (64, 16384, "random")):
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, VARIANTS, f"{kind} M {M} C = K = {C}")
    free(sets)
