"""Probe 25: sddmm_tall.cu's float32 bs 16 wgrad on the mma.sync consumers (docs/perf-notes.md
v26) at M = 4096 and 1024 (C = K = 8192), with fprop beside for the ratio. v26 timed float32
bs 16 consumers on wgmma here too (four blocks stacked as one m64 operand of wgmma m64n16k8
.tf32): 9-24% slower, removed since.

v25's status: float32 bs 16 wgrad at M = 4096 1.61 ms (2 stages 1.579), 1.43x fprop, E 0.656;
the row needs <= 1.40 ms (1.25x fprop). It moves 7.8 GB of dy and x tiles at 4.9 TB/s, where
16-bit bs 32 wgrad's 64-byte tile rows came at 6.3 TB/s: the guess is that mma.sync's
consumers bind (x's fragments split by four warps, each block's by its warp, 12 mma.sync a k8).

    PYTHONPATH=. python probes/p25.py           (random and Barabasi-Albert, M = 4096 and 1024)
    PYTHONPATH=. python probes/p25.py timeline  (the consumers' step stamps)
    PYTHONPATH=. python probes/p25.py stages    (3 stages against 2 over M)
    PYTHONPATH=. python probes/p25.py nb        (16 to 32 blocks a CTA)

Each line: ms of fprop and of each wgrad variant, with each wgrad's relative error against
float64 (norm-wise over the stored blocks, first set).
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


#: (name, #defines added to the spec). mma.sync: 512 instructions a step of 32 rows for two
#: blocks; 2 stages since v26 (3 before).
VARIANTS = [("mma.sync", {}), ("mma.sync STAGES 3", {"STAGES": 3})]


def wgrad_run(sets, L, knobs):
    """(ms, error against float64 on the random layout) of the wgrad with the spec's #defines
    ``knobs``."""
    fresh(sets)
    fn = with_knobs(sp.sddmm_tall_spec, knobs) if knobs else sp.sddmm_tall_spec
    with patched(sp, sddmm_tall_spec=fn):
        t, (xt, dy, out) = t_wgrad(sets)
        sddmm(xt, dy, out.layout, out=out)
    return t, (wgrad_err(sets[0], out) if L == "random" else float("nan"))


def main():
    """Every VARIANT against fprop at M = 4096 (and at M = 1024, leaving out the stage counts)."""
    sweep("", ("random", "barabasi_albert"), (4096, 1024), VARIANTS, fprop=True,
          keep=lambda M, name: M != 1024 or "STAGES" not in name)


def sweep(title, layouts, Ms, variants, fprop=False, keep=lambda M, name: True):
    """One line per layout and M: each variant's wgrad ms (and its error on the random layout),
    a variant being (name, #defines added to the spec) or a dict of #defines; with ``fprop``
    also x @ W's ms and each wgrad's ratio to it."""
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
                name, knobs = v if isinstance(v, tuple) else (str(v or "spec"), v)
                if not keep(M, name):
                    continue
                t, e = wgrad_run(sets, L, knobs)
                ratio = f"{t / tf:.2f}x, " if tf else ""
                line.append(f"{name} {t:.4f} ({ratio}err {e:.1e})")
            say(f"M {M} {L} float32 bs 16{' wgrad ' + title if title else ''}: " + "; ".join(line))
            del sets
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()


def stages():
    """float32 bs 16 wgrad (the shipped consumers) with 3 ring stages and 2 (the spec since v26)
    over M."""
    sweep("on mma.sync", ("random",), (128, 256, 512, 1024, 2048, 4096),
          ({"STAGES": 3}, {"STAGES": 2}))


def nb():
    """float32 bs 16 wgrad with more blocks a CTA (NB): a segment's x tile is read once for its
    NB blocks, so the bytes fall from (segments + blocks) tiles towards one a block (7.8 GB at
    NB 8, 7.4 at 16, 7.1 at 32; one segment a block-row would be 7.0, which at v26's 5.0 TB/s
    is the 1.40 ms the row needs)."""
    sweep("on mma.sync, 2 stages", ("random", "barabasi_albert"), (4096,),
          ({}, {"NB": 16}, {"NB": 16, "BPW": 4}, {"NB": 16, "BK": 16}, {"NB": 24, "BPW": 3},
           {"NB": 32, "BPW": 4}, {"NB": 32, "BPW": 4, "BK": 16}))


def timeline():
    """Step stamps (_common.tall_timeline) of the consumers: the spec (2 stages), 3 stages,
    NB 16."""
    for knobs in ({}, {"STAGES": 3}, {"NB": 16}):
        tall_timeline(BS, knobs)


if __name__ == "__main__":
    modes = {"timeline": timeline, "stages": stages, "nb": nb}
    modes.get((sys.argv[1:] or [""])[0], main)()
