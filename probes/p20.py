"""Probe 20: dsd_grouped_tma.cu with clusters of CTAs that share each slab by TMA multicast (CL,
docs/perf-notes.md v22).

At M = 64 the 16-bit grouped kernel moves about 2.5x more bytes of x slabs than of W from L2
(bs 16: 134 MB of slabs, 54 MB of blocks; v21's H200 loop spans them at about 5.9 TB/s).
With CL CTAs a cluster owning neighbouring groups and walking the same slabs, each slab box is
read from L2 once and multicast into all of them: slab bytes / CL. Measured (v22, H100): CL 2
1.5x slower, CL 4 2.2x.

CK: a cluster of CK CTAs splits one group's steps and sums the accumulators through distributed
shared memory, in place of float32 partials in global memory that the group's last CTA reads
back alone (at M = 64 a group's four items leave its last CTA 256 KB to read after its loop).
UCOL: the consumers' block address chain without signed-division fix-ups (bitwise the same).

    PYTHONPATH=. python probes/p20.py smoke    (small shapes against float64; each variant once)
    PYTHONPATH=. python probes/p20.py          (times at M = 64, three layouts: the default,
                                                UCOL, PW 2 (bs 8), CK 4 and their sum; CL 2 at
                                                M = 4096)
    PYTHONPATH=. python probes/p20.py short    (the M = 64 timings, random and Barabasi-Albert)
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, patched, with_knobs, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402
from cupy_bsparse.ops import matmul  # noqa: E402

say(bench.gpu_name())


def variant(knobs):
    return patched(sp, dsd_grouped_tma_spec=with_knobs(sp.dsd_grouped_tma_spec, knobs))


def smoke():
    for M, C in ((64, 2048), (50, 4096), (4096, 1024), (1000, 2048)):
        for bs in (16, 8):
            for dtype in ("float16",):
                sets = problem(M, C, C, bs, dtype, seed=3)[:1]
                for op in ("fprop", "bprop"):
                    s = sets[0]
                    a, w = (s["x"], s["w"]) if op == "fprop" else (s["dy"], s["w"].T)
                    ref = a.astype(cupy.float64) @ w.toarray().astype(cupy.float64)
                    line = []
                    for knobs in ({}, {"CL": 2}, {"CK": 2}, {"CK": 4}):
                        fresh(sets)
                        out = cupy.full((a.shape[0], w.shape[1]), cupy.nan, a.dtype)
                        with variant(knobs):
                            matmul(a, w, out=out)
                        cupy.cuda.Device().synchronize()
                        line.append(f"{knobs or 'default'} {err(out.astype(cupy.float64), ref):.2e}")
                    say(f"smoke M {M} C {C} bs {bs} {dtype} {op}: " + "; ".join(line))


def timings(short=False):
    layouts = ("random", "barabasi_albert") if short else ("random", "small_world", "barabasi_albert")
    cases = [(64, 16384, L, bs, op) for L in layouts for bs in (16, 8) for op in ("fprop", "bprop")]
    if not short:
        cases += [(4096, 8192, "random", bs, "fprop") for bs in (16, 8)]
    for M, C, L, bs, op in cases:
        sets = problem(M, C, C, bs, "float16", kind=L)
        line, ref = [], None
        if M > 64:
            variants = [{}, {"CL": 2}]
        elif bs == 8:
            variants = [{}, {"PW": 2}, {"PW": 2, "UCOL": 1}, {"CK": 4}, {"CK": 4, "PW": 2, "UCOL": 1}]
        else:
            variants = [{}, {"UCOL": 1}, {"CK": 4}, {"CK": 4, "UCOL": 1}]
        for knobs in variants:
            fresh(sets)
            with variant(knobs):
                t, out = t_dsd(sets, op)
            if ref is None:
                ref = out
            e = err(out, ref)
            line.append(f"{knobs or 'default'} {t:.4f}" + (f" (err {e:.1e})" if knobs else ""))
        say(f"M {M} {L} bs {bs} {op}: " + "; ".join(line))


if __name__ == "__main__":
    smoke() if sys.argv[1:] == ["smoke"] else timings(short=sys.argv[1:] == ["short"])
