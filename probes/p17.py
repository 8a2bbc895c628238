"""Probe 17: float32 (3xTF32) dsd with x split ahead (F32_SPLIT, docs/perf-notes.md v18)
against the default (every x fragment split in registers, once per stored block that uses it).

- bs 8 on dsd_grouped_tma.cu: "pass" (XLO 1: all of x split by split_tf32.cu, its lo plane
  copied beside each slab; v21 also timed "slab", XPRE, since removed);
- bs 16 / 32 / 64 on dsd_stream.cu: "pass" (XLO 1);
- bs 8 wgrad on sddmm_grouped.cu's pairs: "pass" (XLO 1: x and dy split ahead), and other
  step shapes;
- bs 16 wgrad on sddmm_grouped.cu (forced; the default is sddmm_tall.cu): "slab" (XPRE 1: each
  step's x and dy tiles split once in shared memory) on larger items.
x @ W and x @ W^T at M = 64 (C = K = 16384), and bs 8 at M = 4096 (C = K = 8192), d = 0.1
random. Each line: median ms, max |diff| / max |ref| against the default, and whether the
outputs are bitwise equal (expected where the steps are the same: "pass" at bs 8 and M = 64
keeps KW, CAP and the CTAs per SM). Also the split pass alone on x.

    PYTHONPATH=. python probes/p17.py
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, clear, t_dsd, t_wgrad, err  # noqa: E402
from cupy_bsparse import _specs as sp, _gpu_ops as g, bench  # noqa: E402
from cupy_bsparse.ops import sddmm  # noqa: E402

say(bench.gpu_name())


def wgrad_variants(sets, bs, M, variants, kernel=None):
    """Time float32 wgrad by default, then with each (F32_SPLIT mode, spec changes on top of
    sddmm_grouped_spec's split spec), with SDDMM_KERNEL = ``kernel``; print time, speed-up
    and the difference from the default."""
    sp.F32_SPLIT, sp.SDDMM_KERNEL = "off", None
    clear(sets)
    t0, (xt, dy, out) = t_wgrad(sets)
    ref = sddmm(xt, dy, out.layout).data.copy()
    say(f"bs {bs} M={M} wgrad ({sp.sddmm_kernel(bs, 0, M)}): default {t0:.4f} ms")
    orig = sp.sddmm_grouped_spec
    for mode, alt in variants:
        def spec(bs_, did, M_=64, split=None, alt=alt):
            p = dict(orig(bs_, did, M_, split))
            if alt and split:
                p.update(alt)
            return tuple(sorted(p.items()))
        sp.sddmm_grouped_spec = spec
        sp.F32_SPLIT, sp.SDDMM_KERNEL = mode, kernel
        clear(sets)
        try:
            t, _ = t_wgrad(sets)
            got = sddmm(xt, dy, out.layout).data
            shape = {k: v for k, v in g._sddmm_launch("grouped", bs, 0, M)[3].items()
                     if k in ("MK", "R", "NCX", "NBLK", "NW", "STAGES", "XLO", "XPRE")}
            say(f"   {mode} {shape}: {t:.4f} ms ({t0 / t:.2f}x)  diff/max {err(got, ref):.2e}")
        except Exception as e:   # a probe: report and go on
            say(f"   {mode} {alt}: ERROR {type(e).__name__}: {str(e)[:200]}")
        sp.sddmm_grouped_spec = orig
    sp.F32_SPLIT, sp.SDDMM_KERNEL = "off", None

CASES = [(8, 64, 16384, ("pass",)), (16, 64, 16384, ("pass",)),
         (32, 64, 16384, ("pass",)), (64, 64, 16384, ("pass",)),
         (8, 4096, 8192, ("pass",))]
for bs, M, C, modes in CASES:
    sets = problem(M, C, C, bs, "float32")
    xs = sets[0]["x"]
    t_split = bench.time_cuda(g.split_tf32, [(s["x"],) for s in sets], 3, 20)
    say(f"bs {bs} M={M}: split_tf32 of x ({xs.shape[0]} x {xs.shape[1]}): {t_split:.4f} ms")
    for op in ("fprop", "bprop"):
        sp.F32_SPLIT = "off"
        clear(sets)
        t0, ref = t_dsd(sets, op)
        kind = sp.dsd_kernel(bs, 0, M)
        base = g._dsd_launch(bs, 0, M, op == "bprop", kind)[4]
        say(f"bs {bs} M={M} {op} ({kind}): default {t0:.4f} ms")
        for mode in modes:
            sp.F32_SPLIT = mode
            clear(sets)
            try:
                t, got = t_dsd(sets, op)
            except Exception as e:   # a probe: report and go on
                say(f"   {mode}: ERROR {type(e).__name__}: {str(e)[:200]}")
                continue
            spec = g._dsd_launch(bs, 0, M, op == "bprop", kind)[4]
            knobs = {k: spec[k] for k in ("KW", "CAP", "STAGES", "XLO") if k in spec}
            changed = {k: (base.get(k), v) for k, v in knobs.items() if base.get(k) != v}
            say(f"   {mode} {changed}: {t:.4f} ms ({t0 / t:.2f}x)  diff/max {err(got, ref):.2e}"
                f"  bitwise {bool(cupy.array_equal(got, ref))}")
        sp.F32_SPLIT = "off"
    if bs == 8:
        # wgrad: sddmm_grouped.cu's pairs with x and dy split ahead ("pass", XLO 1), and at
        # M = 4096 two other shapes that fit one CTA an SM
        wgrad_variants(sets, 8, M, [("pass", None)] + [("pass", a) for a in (
            [dict(MK=32, R=32, NCX=16), dict(MK=16, R=32, NCX=32, STAGES=3)] if M > 512
            else [dict(STAGES=2), dict(R=32, NCX=32, STAGES=2)])])
    del sets
    cupy.get_default_memory_pool().free_all_blocks()

# float32 bs 16 wgrad (family 5: 1.74x fprop at M = 4096, byte-bound on sddmm_tall.cu's dy
# re-reads): sddmm_grouped.cu items of 32 x column blocks x 512 dy columns, each step's tiles
# split once in shared memory ("slab", XPRE 1), against sddmm_tall.cu (the default) and the
# grouped kernel's own default items
for M, C in ((4096, 8192), (64, 16384)):
    sets = problem(M, C, C, 16, "float32")
    wgrad_variants(sets, 16, M, [(None, None), ("slab", None), ("slab", dict(NCX=16))],
                   kernel="grouped")
    del sets
    cupy.get_default_memory_pool().free_all_blocks()

