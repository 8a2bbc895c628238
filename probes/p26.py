"""Probe 26: dsd_stream.cu with R output block-columns a CTA (STREAM_R) against one (R = 1, the
default) for 16-bit fprop / bprop at M = 4096, C = K = 8192, d = 0.1 (docs/perf-notes.md v27).
The row: bs 32 E 0.211-0.215 against 0.22, bound by x's tiles out of L2 (1.72 GB, one a block
and row tile); four random columns share about 14% of their tiles.

    PYTHONPATH=. python probes/p26.py [bs32|bs64|ba|tall|tallm|tall2]

tall (v28): R 1 with 512-row tiles (BM 512, x's tile as two 256-row boxes, XB 2), which halve
W's re-reads (0.21 of 1.93 GB at bs 32): at two CTAs an SM (MINB 2, 94 registers, 3 stages) and
at one (4 stages); and R 1's 256-row tiles at four CTAs an SM (MINB 4, 3 stages).

tallm (v29): tall's first three cases at M = 2048, 1024 and 8192 (where 512-row tiles would be
the default if they win at 4096).

tall2 (for v30): STREAM_TALL 0 / 1 / 2 three times over on Barabasi-Albert, small world and
random (v29's bench: set 2 2% faster than set 1 on Barabasi-Albert, a tie on random).

A case's "TALL" is STREAM_TALL for it (v29: set 1 is the default from M = 4096, so the 256-row
tiles are TALL "0").

Each line: R and knobs, fprop / bprop median ms, and the max error against R = 1's result.
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import fprop_bprop, fresh, patched, problem, say, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402
from cupy_bsparse._arrays import BFLOAT16  # noqa: E402

say(bench.gpu_name())

#: round 1 (H100): bs 32 fp16 R 1 0.2870 / 0.2845, R 2 0.2945 / 0.2922, R 4 0.3060 / 0.3096 ms
#: (STAGES 4 0.3088, 8 0.3046; R 2 STAGES 6 0.2903). Round 2 timed R 2 / 4 with PERSIST (one
#: wave of CTAs over the (row tile, group) items; v30: slower than R 1, docs/perf-notes.md),
#: since removed from the kernel.
CASES = {32: [("1", {}), ("4", {}), ("2", {}), ("1", {})],
         64: [("1", {}), ("2", {}), ("4", {}), ("1", {})]}
TALL_CASES = [("1", {"TALL": "0"}), ("1", {"TALL": "1"}), ("1", {"TALL": "2"}),
              ("1", {"TALL": "0", "STAGES": 3, "MINB": 4}), ("1", {"TALL": "1", "STAGES": 2}),
              ("1", {"TALL": "0"})]


def run(bs, dtype, kind, cases, m=4096):
    sets = problem(m, 8192, 8192, bs, dtype, kind=kind)
    orig = sp.dsd_stream_spec
    say(f"{dtype} bs {bs} {kind}, M {m}: fprop / bprop ms (R 1 spec "
        f"{dict(orig(bs, sp.dtype_id(dtype), m, False, True))})")
    ref = {}
    for r, knobs in cases:
        knobs = dict(knobs)
        tall = knobs.pop("TALL", None)
        line = fprop_bprop(sets, ref, lambda: patched(sp, STREAM_R=r, STREAM_TALL=tall,
                                                      dsd_stream_spec=with_knobs(orig, knobs)))
        say(f"   R {r} {'TALL ' + tall + ' ' if tall else ''}{knobs or ''}: {line}")
    del sets, ref
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def dense_ms():
    """cuBLAS fp16 x @ W at M = 4096, C = K = 8192 (the bench's baseline), median ms."""
    rng = cupy.random.default_rng(0)
    args = [(rng.standard_normal((4096, 8192), dtype=cupy.float32).astype(cupy.float16),
             rng.standard_normal((8192, 8192), dtype=cupy.float32).astype(cupy.float16))
            for _ in range(2)]
    t = bench.time_cuda(lambda a, b: cupy.matmul(a, b), args, 3, 20)
    say(f"dense fp16 x @ W (cuBLAS): {t:.4f} ms; E = 0.1 x that / t")
    del args
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "bs32"
    if mode == "bs32":
        dense_ms()
        run(32, "float16", "random", CASES[32])
        run(32, BFLOAT16, "random", CASES[32][:3])
    elif mode == "bs64":
        run(64, "float16", "random", CASES[64])
    elif mode == "tall":
        dense_ms()
        run(32, "float16", "random", TALL_CASES)
        run(32, BFLOAT16, "random", TALL_CASES[:2])
        run(32, "float16", "barabasi_albert", TALL_CASES[:2])
    elif mode == "tallm":
        for m in (2048, 1024, 8192):
            run(32, "float16", "random", TALL_CASES[:3], m=m)
    elif mode == "tall2":
        for kind in ("barabasi_albert", "small_world", "random"):
            run(32, "float16", kind, TALL_CASES[:3] * 3)
    elif mode == "ba":
        for kind in ("barabasi_albert", "small_world"):
            run(32, "float16", kind, CASES[32][:3])
        run(64, "float16", "small_world", CASES[64][:3])
