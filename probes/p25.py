"""Probe 25: sddmm_tall.cu's float32 bs 16 consumers on wgmma (four bs 16 blocks stacked as one
m64 operand of wgmma m64n16k8 .tf32, out^T = dy^T x; x's block split once a step into K-major
planes for the CTA's eight blocks; WGMMA 1, docs/perf-notes.md v26) against the mma.sync
consumers: float32 bs 16 wgrad at M = 4096 (C = K = 8192), with fprop beside for the ratio.

v25's status: float32 bs 16 wgrad at M = 4096 1.61 ms (2 stages 1.579), 1.43x fprop, E 0.656;
the row needs <= 1.40 ms (1.25x fprop). It moves 7.8 GB of dy and x tiles at 4.9 TB/s, where
16-bit bs 32 wgrad's 64-byte tile rows came at 6.3 TB/s: the guess is that mma.sync's
consumers bind (x's fragments split by four warps, each block's by its warp, 12 mma.sync a k8).

    PYTHONPATH=. python probes/p25.py           (random and Barabasi-Albert, M = 4096 and 1024)
    PYTHONPATH=. python probes/p25.py chunks    (rows a launch: SDDMM_M_CHUNK)
    PYTHONPATH=. python probes/p25.py timeline [wgmma]  (the consumers' step stamps)
    PYTHONPATH=. python probes/p25.py stages    (mma.sync: 3 stages against 2 over M)
    PYTHONPATH=. python probes/p25.py caps      (mma.sync at 2 stages under register caps)
    PYTHONPATH=. python probes/p25.py nb        (mma.sync with 16 to 32 blocks a CTA)

Each line: ms of fprop, wgrad on mma.sync, wgrad on each wgmma variant, with each wgrad's
relative error against float64 (norm-wise over the stored blocks, first set).
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import (problem, say, fresh, t_dsd, t_wgrad, patched, with_knobs,  # noqa: E402
                     tall_timeline, wgrad_err)
from cupy_bsparse import _specs as sp, bench  # noqa: E402
from cupy_bsparse.ops import sddmm  # noqa: E402

say(bench.gpu_name())
BS = 16


#: (name, F32_TALL_WGMMA, #defines added to the spec). The spec: BPW 1 (two warpgroups, a warp a
#: block), BK 16, 4 stages, 69 registers (cap 72): three CTAs an SM, 132 instructions a warp and
#: step; MAXNREG 56 fits four (20 bytes of spills). BPW 2 (one warpgroup, two m64 tiles): 96
#: registers (20 bytes of loop-invariant spills), four CTAs, 241 instructions a step for two
#: blocks. BK 32 takes 96 (no spill): two CTAs, 236 a step. mma.sync: 512 a step of 32 rows for
#: two blocks; 2 stages since v26 (3 before).
VARIANTS = [("mma.sync", "0", {}), ("mma.sync STAGES 3", "0", {"STAGES": 3}),
            ("wgmma", "1", {}), ("wgmma STAGES 3", "1", {"STAGES": 3}),
            ("wgmma STAGES 6", "1", {"STAGES": 6}),
            ("wgmma MAXNREG 56", "1", {"MAXNREG": 56}),
            ("wgmma BPW 2", "1", {"BPW": 2}),
            ("wgmma BPW 2 STAGES 6", "1", {"BPW": 2, "STAGES": 6}),
            ("wgmma BK 32", "1", {"BK": 32}),
            ("wgmma BK 32 STAGES 3", "1", {"BK": 32, "STAGES": 3}),
            ("wgmma BK 32 STAGES 2", "1", {"BK": 32, "STAGES": 2})]


def wgrad_run(sets, L, on, knobs):
    """(ms, error against float64 on the random layout) of the wgrad with F32_TALL_WGMMA ``on``
    and the spec's #defines ``knobs``."""
    fresh(sets)
    fn = with_knobs(sp.sddmm_tall_spec, knobs) if knobs else sp.sddmm_tall_spec
    with patched(sp, USE_WGMMA=True, F32_TALL_WGMMA=on, sddmm_tall_spec=fn):
        t, (xt, dy, out) = t_wgrad(sets)
        sddmm(xt, dy, out.layout, out=out)
    return t, (wgrad_err(sets[0], out) if L == "random" else float("nan"))


def main():
    """Every VARIANT against fprop at M = 4096 (and at M = 1024, leaving out the stage counts)."""
    sweep("", ("random", "barabasi_albert"), (4096, 1024), VARIANTS, fprop=True,
          keep=lambda M, name: M != 1024 or "STAGES" not in name)


def chunks():
    """wgmma wgrad at M = 4096 in launches of n rows (SDDMM_M_CHUNK; the default is 1024)."""
    for L in ("random",):
        sets = problem(4096, 8192, 8192, BS, "float32", kind=L)
        line = []
        for n in (512, 1024, 2048, 4096):
            fresh(sets)
            with patched(sp, USE_WGMMA=True, F32_TALL_WGMMA="1", SDDMM_M_CHUNK=n):
                t, _ = t_wgrad(sets)
            line.append(f"{n} {t:.4f}")
        say(f"M 4096 {L} float32 bs 16 wgrad on wgmma, rows a launch: " + ", ".join(line))
        del sets
        fresh([])


def sweep(title, layouts, Ms, variants, fprop=False, keep=lambda M, name: True):
    """One line per layout and M: each variant's wgrad ms (and its error on the random layout),
    a variant being (name, F32_TALL_WGMMA, #defines added to the spec) or a dict of #defines
    (on mma.sync); with ``fprop`` also x @ W's ms and each wgrad's ratio to it."""
    for L in layouts:
        for M in Ms:
            sets = problem(M, 8192, 8192, BS, "float32", kind=L)
            assert sp.sddmm_kernel(BS, 0, M) == "tall"
            line, tf = [], None
            if fprop:
                fresh(sets)
                tf, _ = t_dsd(sets, "fprop")
                line.append(f"fprop {tf:.4f}")
            for v in variants:
                name, on, knobs = v if isinstance(v, tuple) else (str(v or "spec"), "0", v)
                if not keep(M, name):
                    continue
                t, e = wgrad_run(sets, L, on, knobs)
                ratio = f"{t / tf:.2f}x, " if tf else ""
                line.append(f"{name} {t:.4f} ({ratio}err {e:.1e})")
            say(f"M {M} {L} float32 bs 16{' wgrad ' + title if title else ''}: " + "; ".join(line))
            del sets
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()


def stages():
    """mma.sync float32 bs 16 wgrad (the shipped consumers) with 3 ring stages and 2 (the spec
    since v26) over M."""
    sweep("on mma.sync", ("random",), (128, 256, 512, 1024, 2048, 4096),
          ({"STAGES": 3}, {"STAGES": 2}))


def caps():
    """mma.sync float32 bs 16 wgrad at 2 stages under register caps (MAXNREG, the mma.sync
    consumers' probe knob): 68 registers fit five CTAs an SM, 64 six (shared memory allows six
    at 2 stages, 37 KB each)."""
    sweep("on mma.sync", ("random", "barabasi_albert"), (1024, 4096),
          ({"STAGES": 3}, {"STAGES": 2}, {"STAGES": 2, "MAXNREG": 64},
           {"STAGES": 2, "MAXNREG": 56}))


def nb():
    """mma.sync float32 bs 16 wgrad with more blocks a CTA (NB): a segment's x tile is read once
    for its NB blocks, so the bytes fall from (segments + blocks) tiles towards one a block
    (7.8 GB at NB 8, 7.4 at 16, 7.1 at 32; one segment a block-row would be 7.0, which at v26's
    5.0 TB/s is the 1.40 ms the row needs)."""
    sweep("on mma.sync, 2 stages", ("random", "barabasi_albert"), (4096,),
          ({}, {"NB": 16}, {"NB": 16, "BPW": 4}, {"NB": 16, "BK": 16}, {"NB": 24, "BPW": 3},
           {"NB": 32, "BPW": 4}, {"NB": 32, "BPW": 4, "BK": 16}))


def timeline():
    """Step stamps (_common.tall_timeline) of the mma.sync consumers (the spec: 2 stages; 3
    stages; NB 16) and of the wgmma ones (the spec, BPW 2, BK 32)."""
    for knobs in ({}, {"STAGES": 3}, {"NB": 16}):
        tall_timeline(BS, knobs, F32_TALL_WGMMA="0")
    if (sys.argv[2:] or [""])[0] == "wgmma":
        for knobs in ({}, {"BPW": 2}, {"BK": 32, "STAGES": 3}):
            tall_timeline(BS, knobs, USE_WGMMA=True, F32_TALL_WGMMA="1")


if __name__ == "__main__":
    modes = {"chunks": chunks, "timeline": timeline, "stages": stages, "caps": caps, "nb": nb}
    modes.get((sys.argv[1:] or [""])[0], main)()
