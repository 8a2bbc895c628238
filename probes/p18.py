"""Probe 18: dsd_grouped_tma.cu's item cut at M = 64 (docs/perf-notes.md v19).

When a launch has fewer groups than resident CTAs, each group's steps are cut into items
(split-K). Before v19 the cut gave every item of a group the same number of steps (a power of
two, about the steps per resident CTA). On small-world and Barabasi-Albert layouts a group's
steps differ tenfold in blocks (a band of full steps, many near-empty ones), so one item held
3.4x the blocks of a random layout's heaviest (5,906 against 1,757 at bs 8) and the launch took
0.163 ms against 0.070. v19 cuts at near-equal weight (a step weighs 1 + blocks / STEP_BLOCKS:
100 for 16-bit, 28 for float32) into as many items as fill one wave.

Part 1 times the old cut ("steps"), the new one at the default STEP_BLOCKS and at 25 / 50 /
100 / 400, and "count" (steps only, one wave), for 16-bit bs 8 and 16 and float32 bs 8, x @ W
and x @ W^T, on the random, small-world and Barabasi-Albert layouts (C = K = 16384, d = 0.1).
Each line: median ms, the heaviest item (steps, blocks), and max |diff| / max |ref| against the
old cut.

Part 2: dsd_stream.cu's column chunks (16-bit bs 32 and 64, M = 64). v3's cap of twice the
mean column length, rounded up to a power of two, left Barabasi-Albert hub chunks of 125
blocks at bs 32 where a random layout's longest column has 73; v19 caps at 1.5x the mean,
unrounded (COLUMN_CAP) in launches of about one wave. Times the old cap, COLUMN_CAP 1.5 (the
default), 1.25 and 1.0 on the three layouts, with the chunk count and the longest chunk.

Part 3 ("copies"): 16-bit bs 8's block copies at M = 64, bulk (WCP 0) against cp.async
(WCP 1), x @ W and x @ W^T, on the three layouts at d = 0.1 and random at d = 0.05 and 0.2,
with the plan's blocks per bulk copy; v19 picks bulk copies from BULK_FROM (2.4) blocks a copy.

Part 4 ("shapes"): the step shape at M = 64 on a random layout (16-bit bs 8 and 16): v7
measured a step every ~1.5 us with no unit busy, and p16's fit gives 1.4 us a step; deeper
rings (4 stages, half the block capacity) or wider slabs (KW x 2, 2 stages) against the
default, to tell the ring's round trip from per-step work.

(Part 5, "prefetch", v20-v21, timed the stored blocks prefetched into L2 a few steps ahead of
their copy, WPF: no gain at bs 8, bs 16 7-10% slower; WPF was removed since.)

    PYTHONPATH=. python probes/p18.py [items] [stream] [copies] [shapes]
    (all by default)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, err, patched, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, _work_lists as wl, _gpu_ops as g, bench  # noqa: E402

say(bench.gpu_name())
PARTS = sys.argv[1:] or ["items", "stream", "copies", "shapes"]


def trial(sets, op, refs, label, note=lambda: ""):
    """Time ``op`` on fresh launches and plans, print label, ms, ``note()`` and the difference
    from the first trial's output (``refs``, a list the first fills); errors are printed."""
    fresh(sets)
    try:
        t, got = t_dsd(sets, op)
        if not refs:
            refs.append(got)
        say(f"   {label:18s} {t:.4f} ms  {note()}  diff/max {err(got, refs[0]):.1e}")
    except Exception as e:   # a probe: report and go on
        say(f"   {label}: ERROR {type(e).__name__}: {str(e)[:200]}")


# Part 1: the item cut of dsd_grouped_tma.cu
balanced = wl.balanced_table
HEAVIEST = {}


def old_cut(gptr, weight, budget):
    """The cut before v19: every item of a group max(4, pow2_up(steps / budget)) steps."""
    chunk = max(4, sp.pow2_up(-(-len(weight) // budget)))
    return wl.chunk_table(np.asarray(gptr, np.int64), chunk, np)


def recording(cut, per_step):
    """``cut``, noting the item count and the heaviest item (steps, blocks) by p16's fit;
    ``per_step`` is the STEP_BLOCKS the weights were made with."""
    def f(gptr, weight, budget):
        table, colinfo, nslots = cut(gptr, weight, budget)
        blocks = np.concatenate([[0.0], np.cumsum((weight - 1) * per_step)])
        nst = table[:, 2] - table[:, 1]
        nbl = blocks[table[:, 2]] - blocks[table[:, 1]]
        i = int(np.argmax(nst * 1.4 + nbl * 0.0143))      # us
        HEAVIEST["v"] = (len(table), int(nst[i]), int(round(nbl[i])))
        return table, colinfo, nslots
    return f


def heaviest():
    n, s, b = HEAVIEST.pop("v", (0, 0, 0))
    return f"{n} items, heaviest {s} steps {b} blocks"


for kind in ("random", "small_world", "barabasi_albert") if "items" in PARTS else ():
    for bs, dtype in ((8, "float16"), (16, "float16"), (8, "float32")):
        sets = problem(64, 16384, 16384, bs, dtype, kind=kind)
        for op in ("fprop", "bprop"):
            did = sp.dtype_id(np.dtype(dtype))
            code = dict(sp.dsd_grouped_tma_spec(bs, did, 64, False))["DTYPE_ID"]
            say(f"{kind} {dtype} bs {bs} M 64 {op} ({sp.dsd_kernel(bs, did, 64)}):")
            refs = []
            default = wl.step_blocks(sp.dsd_grouped_tma_spec(bs, did, 64, False))
            variants = ([("steps", old_cut, default), (f"weight {default} (default)", balanced,
                                                          default)]
                        + [(f"weight {v}", balanced, v) for v in (25, 50, 100, 400) if v != default]
                        + [("count", balanced, 1e12)])
            for name, cut, per_step in variants:
                with patched(wl, balanced_table=recording(cut, per_step),
                             STEP_BLOCKS={(code, bs): per_step}):
                    trial(sets, op, refs, name, heaviest)
        del sets


# Part 2: dsd_stream.cu's column chunks
orig_blocks = wl.chunk_blocks


def old_blocks(layout, trans_w, m_tiles, g, resident, fill):
    """The cap before v19: pow2_up(2 x mean / g) stages (the fill branch is float32's only)."""
    ncols = layout.block_shape[0 if trans_w else 1]
    return max(sp.pow2_up(-(-2 * max(layout.nnzb, 1) // (max(ncols, 1) * g))), 2) * g


for kind in ("random", "small_world", "barabasi_albert") if "stream" in PARTS else ():
    for bs in (32, 64):
        sets = problem(64, 16384, 16384, bs, "float16", kind=kind)
        lay = sets[0]["w"].layout
        for op in ("fprop", "bprop"):
            # output block-columns: W's columns (x @ W) or rows (x @ W^T)
            counts = np.diff((lay.T if op == "fprop" else lay).to_cpu().get("indptr", np))
            say(f"{kind} float16 bs {bs} M 64 {op} ({sp.dsd_kernel(bs, 1, 64)}): mean column "
                f"{counts.mean():.1f}, longest {counts.max()}")
            refs = []
            for name, cap in (("old cap", None), ("cap 1.5", 1.5), ("cap 1.25", 1.25),
                              ("cap 1.0", 1.0)):
                def chunks():
                    chunk = wl.chunk_blocks(lay, op == "bprop", 1, 1, len(counts), False)
                    n = int(np.maximum(-(-counts // chunk), 1).sum())
                    return f"chunk <= {chunk} blocks (g = 1), {n} chunks"
                with patched(wl, chunk_blocks=old_blocks if cap is None else orig_blocks,
                             COLUMN_CAP={bs: cap or 1.5}):
                    trial(sets, op, refs, name, chunks)
        del sets


# Part 3: bs 8 block copies by the layout
for kind, d in (("random", 0.1), ("small_world", 0.1), ("barabasi_albert", 0.1),
                ("random", 0.05), ("random", 0.2)) if "copies" in PARTS else ():
    sets = problem(64, 16384, 16384, 8, "float16", kind=kind, density=d)
    lay = sets[0]["w"].layout
    for op in ("fprop", "bprop"):
        tw = op == "bprop"
        bpc = wl.blocks_per_copy(lay, tw, sp.dsd_grouped_tma_spec(8, 1, 64, tw))
        say(f"{kind} d {d} float16 bs 8 M 64 {op}: {bpc:.2f} blocks a bulk copy "
            f"(v19 picks {'bulk' if bpc >= sp.BULK_FROM else 'cp.async'})")
        refs = []
        for name, rule in (("bulk (WCP 0)", 0.0), ("cp.async (WCP 1)", 1e9)):
            with patched(sp, BULK_FROM=rule):
                trial(sets, op, refs, name)
    del sets


# Part 4: step shapes at M = 64 (random layout)
orig_spec = sp.dsd_grouped_tma_spec
for bs in (8, 16) if "shapes" in PARTS else ():
    sets = problem(64, 16384, 16384, bs, "float16")
    base = dict(orig_spec(bs, 1, 64, False))
    shapes = [("default", {}), ("4 stages, CAP / 2", dict(STAGES=4, CAP=base["CAP"] // 2)),
              ("2 stages", dict(STAGES=2)), ("KW x 2, 2 stages", dict(KW=2 * base["KW"], STAGES=2)),
              ("KW / 2, 4 stages", dict(KW=base["KW"] // 2, STAGES=4))]
    for op in ("fprop", "bprop"):
        say(f"random float16 bs {bs} M 64 {op}: step shapes ({base})")
        refs = []
        for name, alt in shapes:
            def smem():
                return f"{g._dsd_launch(bs, 1, 64, op == 'bprop', 'grouped_tma')[2] // 1024} KB a CTA"
            with patched(sp, dsd_grouped_tma_spec=with_knobs(orig_spec, alt)):
                trial(sets, op, refs, name, smem)
    del sets
