"""Probe 31: dsd_stream.cu on the item queue (STREAM_QUEUE: one launch of the resident CTAs
taking (row tile, column) items from a counter, row-tile-major, the ring running on across
items; docs/perf-notes.md v33) against the default (one CTA a column chunk), 16-bit, C = K =
8192, d = 0.1. Predicted at fp16 bs 32 random, M = 4096: 0.2838 -> 0.21-0.23 ms (the ring
filled once a CTA, the tail one item's spread).

    PYTHONPATH=. python probes/p31.py [bs64|tiles]

Each case: dense cuBLAS ms, then per variant fprop / bprop median ms (max error against the
default's result) and fprop E = d x dense / fprop. bs64: bs 64 (128-row tiles) on random and
small world. tiles: bs 32 on 256-row tiles (STREAM_TALL 0) as well."""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import fprop_bprop, fresh, patched, problem, say  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())


def dense_ms(s):
    """cuBLAS x @ W on the first set, W dense."""
    wd = s["w"].toarray()
    return bench.time_cuda(lambda a, b: a @ b, [(s["x"], wd)], 3, 20)


def run(kind, bs=32, dtype="float16", m=4096, n=8192, variants=((None, None), ("1", None))):
    sets = problem(m, n, n, bs, dtype, kind=kind)
    td = dense_ms(sets[0])
    say(f"{dtype} bs {bs} {kind}, M {m}, C = K = {n}: dense {td:.4f} ms")
    ref = {}
    for q, tall in variants:
        line = fprop_bprop(sets, ref, lambda: patched(sp, STREAM_QUEUE=q, STREAM_TALL=tall))
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        say(f"   queue {q or 'none (default)'}, tall {tall}: {line}; fprop E {0.1 * td / f:.3f}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    arg = sys.argv[1:]
    if arg == ["bs64"]:
        for kind in ("random", "small_world"):
            run(kind, bs=64)
    elif arg == ["tiles"]:
        run("random", variants=((None, None), ("1", None), ("1", "0"), ("1", "2")))
    else:
        for kind, m, dt in (("random", 4096, "float16"), ("barabasi_albert", 4096, "float16"),
                            ("random", 4096, "bfloat16"), ("random", 2048, "float16"),
                            ("random", 8192, "float16")):
            run(kind, m=m, dtype=dt)
