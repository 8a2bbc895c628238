"""Probe 33: 16-bit x @ W at M = 4096 with more bytes in flight an SM (docs/perf-notes.md v33).
p32: TMA copies of L2-resident tiles reach about 7.8 TB/s whatever the box row width, so bs 32's
6.3 TB/s is not a 64-byte-row cap. Reading: the copies' rate an SM is the bytes it keeps in flight
over a round trip of about 2.1 us (the measured answer: not that; the deeper ring pays only on
the queue, perf-notes v33); bs 32's two CTAs an SM of 3 stages keep about 100 KB in
flight (one stage held by the consumers). Deeper rings at one CTA an SM, with the item queue so
each ring fills once, keep more:
- bs 32: 512-row tiles, 6 stages (204 KB), one CTA an SM, queue off / on;
- bs 64: 256-row tiles (40 KB stages, 5 of them) or 512-row tiles (72 KB, 3), which also cut W's
  re-reads (bytes a MFLOP 24 -> 20 / 18 KB), queue off / on.

    PYTHONPATH=. python probes/p33.py [bs32|bs64|sets|knobs]

sets: the third 512-row set (STREAM_TALL 3: 6 stages on the queue) against the first over M,
dtype and layout. knobs: the queue's set with one knob changed (16 consumer warps, x's L2
hint), and against the default at M = 1024-3072.

Each line: the variant, fprop / bprop median ms (max error against the default's), fprop E."""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import fprop_bprop, fresh, patched, problem, say, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402

say(bench.gpu_name())
ORIG = sp.dsd_stream_spec

VARIANTS = {
    32: [("default", {}, None, None),
         ("BM 512, 6 stages, 1 CTA an SM", {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 6}, "0", None),
         ("  + queue", {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 6}, "0", "1"),
         ("BM 512, 5 stages, 1 CTA an SM, queue", {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 5}, "0", "1"),
         ("default + queue", {}, None, "1")],
    64: [("default", {}, None, None),
         ("BM 256, 4x2 warps, 5 stages", {"BM": 256, "WARPS_M": 4, "STAGES": 5}, None, None),
         ("  + queue", {"BM": 256, "WARPS_M": 4, "STAGES": 5}, None, "1"),
         ("BM 512, 8x2 warps, 3 stages", {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 3}, None, None),
         ("  + queue", {"BM": 512, "WARPS_M": 8, "XB": 2, "STAGES": 3}, None, "1"),
         ("BM 256, 8x1 warps, 5 stages, queue", {"BM": 256, "WARPS_M": 8, "WARPS_N": 1, "STAGES": 5}, None, "1")],
}


def run(bs, kind="random", dtype="float16", m=4096, n=8192):
    sets = problem(m, n, n, bs, dtype, kind=kind)
    td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
    say(f"{dtype} bs {bs} {kind}, M {m}, C = K = {n}: dense {td:.4f} ms")
    ref = {}
    for name, knobs, tall, q in VARIANTS[bs]:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        line = fprop_bprop(sets, ref, lambda: patched(sp, dsd_stream_spec=spec, STREAM_TALL=tall,
                                                      STREAM_QUEUE=q))
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        say(f"   {name}: {line}; fprop E {0.1 * td / f:.3f}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def sets():
    """The third 512-row set (6 stages, the queue) against the first over M, dtype and layout."""
    for kind, m, dtype, tall in (("random", 4096, "float16", ("1", "3")),
                                 ("random", 4096, "bfloat16", ("1", "3")),
                                 ("barabasi_albert", 4096, "float16", ("1", "3")),
                                 ("random", 8192, "float16", ("1", "3")),
                                 ("random", 2048, "float16", ("0", "1", "3"))):
        data = problem(m, 8192, 8192, 32, dtype, kind=kind)
        td = bench.time_cuda(lambda a, b: a @ b, [(data[0]["x"], data[0]["w"].toarray())], 3, 20)
        say(f"{dtype} bs 32 {kind}, M {m}: dense {td:.4f} ms")
        ref = {}
        for t in tall:
            line = fprop_bprop(data, ref, lambda: patched(sp, STREAM_TALL=t))
            f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
            say(f"   STREAM_TALL {t}: {line}; fprop E {0.1 * td / f:.3f}")
        del data
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()


def knobs():
    """The queue's set (STREAM_TALL 3) with one knob changed (16 consumer warps of 32 rows; x's
    L2 hint evict_normal or evict_first), random fp16 and bf16 at M = 4096; then the queue's
    set against the default below STREAM_TALL_M (M = 1024-3072)."""
    for dtype in ("float16", "bfloat16"):
        data = problem(4096, 8192, 8192, 32, dtype)
        say(f"{dtype} bs 32 random, M 4096")
        ref = {}
        for name, k in (("the queue's set", {}), ("16 consumer warps", {"WARPS_M": 16}),
                        ("x evict_normal", {"X_HINT": 2}), ("x evict_first", {"X_HINT": 0})):
            spec = with_knobs(ORIG, k) if k else ORIG
            line = fprop_bprop(data, ref, lambda: patched(sp, dsd_stream_spec=spec,
                                                          STREAM_TALL="3"))
            say(f"   {name}: {line}")
        del data
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()
    for m in (1024, 1536, 3072):
        data = problem(m, 8192, 8192, 32, "float16")
        say(f"float16 bs 32 random, M {m}")
        ref = {}
        for t in (None, "3"):
            line = fprop_bprop(data, ref, lambda: patched(sp, STREAM_TALL=t))
            say(f"   STREAM_TALL {t or 'default'}: {line}")
        del data
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    if sys.argv[1:] == ["sets"]:
        sets()
    elif sys.argv[1:] == ["knobs"]:
        knobs()
    else:
        for bs in ([int(sys.argv[1][2:])] if sys.argv[1:] else [32, 64]):
            run(bs)
