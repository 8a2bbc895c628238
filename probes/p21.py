"""Probe 21: dsd_stream.cu up to M = 64 with persistent CTAs over an equal cut of the entries
(PERSIST 1, ``_work_lists.cta_cut``; docs/perf-notes.md v23) against one CTA a column chunk.

v21's timeline (fp16 M = 64 bs 64) put the loop at HBM speed but the heaviest CTA at 38 steps
against a mean of 25.5 (span 23.9 us against a median of 18.1): the tail is the longest
column. With PERSIST every CTA takes at most ceil(nnzb / CTAs) blocks.

    PYTHONPATH=. python probes/p21.py          (M = 64, C = K = 16384: 16-bit bs 32 / 64 and
                                                float32 bs 16 / 32 / 64, random and
                                                Barabasi-Albert layouts; M = 1 and 33 too)
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, patched, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())


def main():
    cases = [(64, L, dt, bs) for L in ("random", "barabasi_albert")
             for dt, bss in (("float16", (64, 32)), ("float32", (64, 32, 16))) for bs in bss]
    cases += [(M, "random", "float16", 64) for M in (1, 33)]
    for M, L, dt, bs in cases:
        sets = problem(M, 16384, 16384, bs, dt, kind=L)
        for op in ("fprop", "bprop"):
            line, ref = [], None
            for persist in ("0", "1"):
                fresh(sets)
                with patched(sp, STREAM_PERSIST=persist):
                    t, out = t_dsd(sets, op)
                if ref is None:
                    ref = out
                line.append(('persist' if persist == '1' else 'chunks') + f' {t:.4f}'
                            + (f" (err {err(out, ref):.1e})" if persist == "1" else ""))
            say(f"M {M} {L} {dt} bs {bs} {op}: " + "; ".join(line))
        del sets
        cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
