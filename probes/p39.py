"""Probe 39: x's first touch on the item queue: columns walked from staggered block-rows
(docs/perf-notes.md v35; v36 also timed XPF, x's tiles prefetched into L2 ahead of the ring,
since removed with its knob: every variant slower).

v35's timeline of 16-bit bs 64 at M = 4096 (wgmma consumers on the queue, 512-row tiles) has a
copy landing 2.25 us after issue at the median and 4.2 us at p90, while ncu puts the L2 at 61%
and DRAM reads at 133 MB against the 77 MB of x and W once. Every item walks its column's
block-rows in ascending order, and the items of a row tile start close together, so the CTAs
reach each new x tile together, the first of them missing L2. Here each column's entries are
rotated to start at a block-row that depends on the column, so the CTAs spread over x's tiles
(the sums are taken in another order: results equal to the tolerance, not bitwise).

    PYTHONPATH=.:probes python probes/p39.py

Each line: the case, x @ W / x @ W^T median ms (max error against the default's), fprop E."""
import cupy

from _common import fprop_bprop, fresh, patched, problem, say
from cupy_bsparse import _work_lists as wl, bench

say(bench.gpu_name())
ORIG = wl.dsd_queue_plan


def rotated_plan(layout, trans_w, walk="ascending"):
    """``dsd_queue_plan``'s work list with each column's entries rotated by (37 * column) mod
    its length; cached beside it."""
    key = ("dsd_queue_rotated", bool(trans_w), str(walk))
    plan = layout.plan_cache.get(key)
    if plan is None:
        table, colinfo, ent, nslots = ORIG(layout, trans_w, walk)
        t = table.astype(cupy.int64)
        n = (t[:, 2] - t[:, 1]).clip(0)
        row = cupy.repeat(cupy.arange(t.shape[0]), n)
        local = cupy.arange(row.size) - cupy.repeat(cupy.cumsum(n) - n, n)
        first, length = t[row, 1], n[row]
        dst = first + local
        src = first + (local + 37 * t[row, 0]) % cupy.maximum(length, 1)
        rot = ent.copy()
        rot[dst] = ent[src]
        plan = layout.plan_cache[key] = (table, colinfo, cupy.ascontiguousarray(rot), nslots)
    return plan


def variant(plan):
    """A context: the queue's plan function ``plan``."""
    return patched(wl, dsd_queue_plan=plan)


if __name__ == "__main__":
    for bs in (64, 32):
        for dtype in ("float16", "bfloat16"):
            data = problem(4096, 8192, 8192, bs, dtype)
            td = bench.time_cuda(lambda a, b: a @ b, [(data[0]["x"], data[0]["w"].toarray())], 3, 20)
            say(f"{dtype} bs {bs} random, M 4096, C = K = 8192: dense {td:.4f} ms")
            ref = {}
            for name, plan in (("the queue (default)", ORIG),
                               ("  columns from staggered block-rows", rotated_plan),
                               ("the queue again", ORIG)):
                line = fprop_bprop(data, ref, lambda: variant(plan))
                f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
                say(f"   {name}: {line}; fprop E {0.1 * td / f:.3f}")
            del data
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()
