"""Probe 37: sddmm_tall.cu's segments in launch order, largest first (docs/perf-notes.md v35).

The wgrad above M = 64 launches one CTA a segment (at most NB blocks of one block-row), in
block-row order. 16-bit bs 64 runs one CTA an SM (NB 4) and its random layout at d = 0.1 has
about 450 segments, 3.4 waves, whose CTAs take about 50 us each: a row of 13 blocks is cut
4, 4, 4, 1, and the hardware hands CTAs out in blockIdx order, so short segments sit among
long ones and a long one can start last. A model (time of a segment 1 + its blocks, the CTAs
handed out in order to the first free slot of 132) puts the makespan at 19.0 units in row order
and 17.0 with the segments sorted largest first (LPT; a stable sort, so the full segments keep
row order). The products are the same, each block one CTA's.

    PYTHONPATH=.:probes python probes/p37.py

Each line: the layout and dtype, then the wgrad's median ms in row order and largest first."""
import cupy

from _common import fresh, problem, say, wgrad_line, patched
from cupy_bsparse import _work_lists as wl, bench

say(bench.gpu_name())
ORIG = wl.sddmm_plan


def lpt_plan(layout, nb):
    """``sddmm_plan``'s (seg, cols) with the segments sorted by block count, largest first
    (stable); cached beside it."""
    key = ("sddmm_lpt", nb)
    plan = layout.plan_cache.get(key)
    if plan is None:
        seg, cols = ORIG(layout, nb)
        order = cupy.argsort(-cupy.asarray(seg[:, 2]), kind="stable")
        plan = layout.plan_cache[key] = (cupy.ascontiguousarray(cupy.asarray(seg)[order]), cols)
    return plan


for bs, kind, dtype in ((64, "random", "float16"), (64, "random", "bfloat16"),
                        (64, "barabasi_albert", "float16"), (64, "small_world", "float16"),
                        (32, "random", "float16"), (16, "random", "float32"),
                        (8, "random", "float32")):
    sets = problem(4096, 8192, 8192, bs, dtype, kind=kind)
    row = wgrad_line(sets, lambda: patched(wl, sddmm_plan=ORIG), check=True)
    lpt = wgrad_line(sets, lambda: patched(wl, sddmm_plan=lpt_plan), check=True)
    again = wgrad_line(sets, lambda: patched(wl, sddmm_plan=ORIG))
    say(f"{kind} {dtype} bs {bs}: row order {row} / largest first {lpt} / row order {again}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
