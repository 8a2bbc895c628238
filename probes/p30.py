"""Probe 30: dsd_stream.cu's persistent CTAs above M = 64 (STREAM_PERSIST_TILES: G row tiles a
launch, the resident CTAs cut across them) against one CTA a column chunk, 16-bit, C = K = 8192,
d = 0.1 (docs/perf-notes.md v31). On 512-row tiles at M = 4096 (bs 32) a CTA's loop is 1.32 us a
step against a steady 0.88: each of the 2048 CTAs fills its ring once (a copy takes 2.1 us).
PERSIST pays that once a CTA, but over all 8 row tiles at once it was 2.4x slower (x's 64 MB
hot in L2, not 8 MB). G = 1, 2 or 4 keeps one to four row tiles hot; the cost is a split
column a CTA, through the workspace.

    PYTHONPATH=. python probes/p30.py [bs64]

Each line: G (default: none), fprop / bprop median ms and the max error against the default's
result. bs64: bs 64 (128-row tiles) at M = 4096."""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import fprop_bprop, fresh, patched, problem, say  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())


def run(kind, bs=32, dtype="float16", m=4096, n=8192, tiles=(None, "1", "2", "4", None)):
    sets = problem(m, n, n, bs, dtype, kind=kind)
    say(f"{dtype} bs {bs} {kind}, M {m}, C = K = {n}")
    ref = {}
    for g in tiles:
        line = fprop_bprop(sets, ref, lambda: patched(sp, STREAM_PERSIST_TILES=g))
        say(f"   G {g or 'none (default)'}: {line}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    if sys.argv[1:] == ["bs64"]:
        for kind in ("random", "small_world"):
            run(kind, bs=64)
    else:
        for kind, m in (("random", 4096), ("barabasi_albert", 4096), ("random", 2048),
                        ("random", 8192)):
            run(kind, m=m)
