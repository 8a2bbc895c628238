"""Probe 16: 16-bit x @ W^T (bprop) on dsd_grouped_tma.cu. bs 16 at M = 4096 (C = K = 8192,
d = 0.1) is the one 16-bit M = 4096 product that misses its target on structured layouts (v17
bench: E 0.108 Barabasi-Albert, 0.114 small world, against 0.12; fprop 0.125 / 0.137).

x @ W^T's steps list their blocks by x column (block-row of W^T), so neighbours in a step are
rarely neighbours in W's storage and the producer issues about one bulk copy per block. SORT
orders each step's entries by stored-block index after the step is cut (per output column the
order is unchanged: bitwise equal results) so runs of W's row j are one copy. Variants: SORT,
cp.async block copies (WCP), step capacity, stages, rows; on the random, Barabasi-Albert and
small-world layouts; bs 8 x @ W^T (WCP 1 by default) with SORT and bulk copies at M = 64 and
4096. Outputs against the shipped plan and spec's."""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, err  # noqa: E402
from cupy_bsparse import _specs as sp, _work_lists as wl, bench

say(bench.gpu_name())
orig = sp.dsd_grouped_tma_spec
orig_gt = wl.group_table
CUR = {"v": None, "sort": False}


def spec(bs, did, M, trans_w):
    p = dict(orig(bs, did, M, trans_w))
    if CUR["v"] and trans_w:
        p.update(CUR["v"])
        if p.get("WCP") == 0:
            del p["WCP"]
    return tuple(sorted(p.items()))


def group_table(ptr, ent, r, kw_blocks, cap, kin_blocks, bs, xp, by_column=False):
    # the order before v17 (by x column), sorted by stored block with SORT (v17's by_column
    # gives the same order on real layouts)
    steps, gent, gptr = orig_gt(ptr, ent, r, kw_blocks, cap, kin_blocks, bs, xp)
    if CUR["sort"] and gent.shape[0]:
        n = gent.shape[0]
        step_of = xp.searchsorted(steps[:, 1].astype(xp.int64), xp.arange(n, dtype=xp.int64),
                                  side="right") - 1
        order = xp.argsort(step_of * (1 << 32) + gent[:, 0].astype(xp.int64))
        gent = gent[order]
    return steps, gent, gptr


sp.dsd_grouped_tma_spec = spec
wl.group_table = group_table


def run(sets, v, sort, ref=None, label=None):
    CUR["v"], CUR["sort"] = v, sort
    fresh(sets)
    try:
        t, got = t_dsd(sets, "bprop")
        if ref is not None:
            same = bool((got == ref).all())
            say(f"   {label or v} sort={sort}: {t:.4f} ms  diff/max {err(got, ref):.2e} bitwise {same}")
        return t, got
    except Exception as e:
        say(f"   {label or v} sort={sort}: ERROR {type(e).__name__}: {str(e)[:160]}")
        return None, None
    finally:
        CUR["v"], CUR["sort"] = None, False


VARIANTS = [(None, True), (dict(WCP=1), False), (dict(WCP=1), True), (dict(CAP=16), True),
            (dict(STAGES=3, KW=128), True), (dict(W_HINT=0), True)]
for kind in ("random", "barabasi_albert", "small_world"):
    sets = problem(4096, 8192, 8192, 16, np.float16, kind=kind)
    fresh(sets)
    tf, _ = t_dsd(sets, "fprop")
    t0, ref = run(sets, None, False)
    say(f"bs 16 M 4096 {kind}: fprop {tf:.4f} ms, bprop {t0:.4f} ms ({sp.dsd_kernel(16, 1, 4096)})")
    for v, srt in VARIANTS:
        run(sets, v, srt, ref)
    del sets
for M, C in ((64, 16384), (4096, 8192)):
    for kind in ("random", "small_world"):
        for bs in (16, 8):
            if bs == 16 and M == 4096:
                continue
            sets = problem(M, C, C, bs, np.float16, kind=kind)
            fresh(sets)
            tf, _ = t_dsd(sets, "fprop")
            t0, ref = run(sets, None, False)
            say(f"bs {bs} M {M} {kind}: fprop {tf:.4f} ms, bprop {t0:.4f} ms ({sp.dsd_kernel(bs, 1, M)})")
            for v, srt in ((None, True), (dict(WCP=0), True), (dict(WCP=1), True), (dict(WCP=1), False)):
                run(sets, v, srt, ref)
            del sets
