"""Probe 23: sddmm_tall.cu's float32 consumers on wgmma (3xTF32 on wgmma m64n64k8 .tf32, x^T's
fragments from registers, dy's blocks split into K-major planes; WGMMA 1, docs/perf-notes.md v25)
against the mma.sync consumers: float32 bs 64 wgrad at M = 4096 (C = K = 8192) and M = 1024,
with fprop beside for the ratio.

v24's status: float32 bs 64 wgrad at M = 4096 1.46 ms, 1.33x fprop, E 0.71 (target 0.85 and
1.25x): 3xTF32 on mma.sync, issue-bound.

    PYTHONPATH=. python probes/p23.py          (random and Barabasi-Albert layouts)

Each line: ms of fprop, wgrad on mma.sync, wgrad on wgmma (STAGES 4, the spec; then 6), with
each wgrad's relative error against float64 (norm-wise over the stored blocks, first set).
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


def chunks():
    """wgmma wgrad at M = 4096 in launches of n rows (SDDMM_M_CHUNK), STAGES 4 and 6."""
    orig = sp.sddmm_tall_spec
    for L in ("random", "barabasi_albert"):
        sets = problem(4096, 8192, 8192, 64, "float32", kind=L)
        line = []
        for n in (None, 256, 512, 1024, 2048):
            for st in (4, 6):
                fresh(sets)
                with patched(sp, USE_WGMMA=True, SDDMM_M_CHUNK=n,
                             sddmm_tall_spec=with_knobs(orig, {"STAGES": st})):
                    t, _ = t_wgrad(sets)
                line.append(f"{n or 'one'}/{st} {t:.4f}")
        say(f"M 4096 {L} float32 bs 64 wgrad on wgmma, rows a launch / stages: " + ", ".join(line))
        del sets
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()


def timeline():
    """The wgmma consumers' step stamps (_common.tall_timeline) at M = 4096, bs 64."""
    tall_timeline(64, {}, USE_WGMMA=True)


#: (name, USE_WGMMA, #defines added to the spec). v25's first build (the split overlapping the
#: batch in two plane sets, 200 registers) measured 1.317 ms (STAGES 6 1.296) against mma.sync's
#: 1.481 at M = 4096; its timeline showed one CTA an SM (cuda_occupancy.h allots registers per
#: SM sub-partition: two warps of 200 each) and a consumer chain of 890 ns a step. The shipped
#: build waits for the batch first (one plane set) and caps registers at 168: two CTAs an SM,
#: 1.116 ms.
VARIANTS = [("mma.sync", False, {}), ("wgmma", True, {}), ("wgmma STAGES 6", True, {"STAGES": 6})]


def main():
    orig = sp.sddmm_tall_spec
    for L in ("random", "barabasi_albert"):
        for M in (4096, 1024):
            sets = problem(M, 8192, 8192, 64, "float32", kind=L)
            assert sp.sddmm_kernel(64, 0, M) == "tall"
            fresh(sets)
            tf, _ = t_dsd(sets, "fprop")
            line = [f"fprop {tf:.4f}"]
            for name, wg, knobs in VARIANTS:
                fresh(sets)
                fn = with_knobs(orig, knobs) if knobs else orig
                with patched(sp, USE_WGMMA=wg, sddmm_tall_spec=fn):
                    t, (xt, dy, out) = t_wgrad(sets)
                    sddmm(xt, dy, out.layout, out=out)
                e = wgrad_err(sets[0], out) if M == 4096 or L == "random" else float("nan")
                line.append(f"{name} {t:.4f} ({t / tf:.2f}x, err {e:.1e})")
            say(f"M {M} {L} float32 bs 64: " + "; ".join(line))
            del sets
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    {"chunks": chunks, "timeline": timeline}.get((sys.argv[1:] or [""])[0], main)()
