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

    PYTHONPATH=. python probes/p33.py [bs32|bs64|sets|knobs|hints|stores]

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

Q512 = {"BM": 512, "WARPS_M": 8, "XB": 2}
#: bs -> (label, spec knobs, _specs attributes) of the default mode
VARIANTS = {
    32: [("default", {}, {}),
         ("BM 512, 6 stages, 1 CTA an SM", {**Q512, "STAGES": 6}, {"STREAM_TALL": "0"}),
         ("  + queue", {**Q512, "STAGES": 6}, {"STREAM_TALL": "0", "STREAM_QUEUE": "1"}),
         ("BM 512, 5 stages, 1 CTA an SM, queue", {**Q512, "STAGES": 5},
          {"STREAM_TALL": "0", "STREAM_QUEUE": "1"}),
         ("default + queue", {}, {"STREAM_QUEUE": "1"})],
    64: [("default", {}, {}),
         ("BM 256, 4x2 warps, 5 stages", {"BM": 256, "WARPS_M": 4, "STAGES": 5}, {}),
         ("  + queue", {"BM": 256, "WARPS_M": 4, "STAGES": 5}, {"STREAM_QUEUE": "1"}),
         ("BM 512, 8x2 warps, 3 stages", {**Q512, "STAGES": 3}, {}),
         ("  + queue", {**Q512, "STAGES": 3}, {"STREAM_QUEUE": "1"}),
         ("BM 256, 8x1 warps, 5 stages, queue",
          {"BM": 256, "WARPS_M": 8, "WARPS_N": 1, "STAGES": 5}, {"STREAM_QUEUE": "1"})],
}


def compare(bs, kind, m, dtype, variants, n=8192):
    """One problem (C = K = n, d = 0.1): dense cuBLAS ms, then each variant's line (label, the
    spec knobs it sets, the ``_specs`` attributes it patches) with its fprop E."""
    data = problem(m, n, n, bs, dtype, kind=kind)
    td = bench.time_cuda(lambda a, b: a @ b, [(data[0]["x"], data[0]["w"].toarray())], 3, 20)
    say(f"{dtype} bs {bs} {kind}, M {m}, C = K = {n}: dense {td:.4f} ms")
    ref = {}
    for name, knobs, attrs in variants:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        line = fprop_bprop(data, ref, lambda: patched(sp, dsd_stream_spec=spec, **attrs))
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        say(f"   {name}: {line}; fprop E {0.1 * td / f:.3f}")
    del data
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def tall_sets(*sets):
    """Variants of STREAM_TALL (None: the launcher's rule)."""
    return [(f"STREAM_TALL {t or 'default'}", {}, {"STREAM_TALL": t}) for t in sets]


def sets():
    """The third 512-row set (6 stages, the queue) against the first over M, dtype and layout."""
    for kind, m, dtype, tall in (("random", 4096, "float16", ("1", "3")),
                                 ("random", 4096, "bfloat16", ("1", "3")),
                                 ("barabasi_albert", 4096, "float16", ("1", "3")),
                                 ("random", 8192, "float16", ("1", "3")),
                                 ("random", 2048, "float16", ("0", "1", "3"))):
        compare(32, kind, m, dtype, tall_sets(*tall))


def knobs():
    """The queue's set (STREAM_TALL 3) with one knob changed (16 consumer warps of 32 rows; x's
    L2 hint evict_normal or evict_first), random fp16 and bf16 at M = 4096; then the queue's
    set against the default below STREAM_TALL_M (M = 1024-3072)."""
    q = {"STREAM_TALL": "3"}
    for dtype in ("float16", "bfloat16"):
        compare(32, "random", 4096, dtype, [
            ("the queue's set", {}, q), ("16 consumer warps", {"WARPS_M": 16}, q),
            ("x evict_normal", {"X_HINT": 2}, q), ("x evict_first", {"X_HINT": 0}, q)])
    for m in (1024, 1536, 3072):
        compare(32, "random", m, "float16", tall_sets(None, "3"))


def hints():
    """The queue's set with W's L2 hint evict_first or evict_normal (x's stays evict_last),
    random fp16 at M = 4096 (ncu: the L2 at 95% of its peak, DRAM at 27%, v34)."""
    q = {"STREAM_TALL": "3"}
    compare(32, "random", 4096, "float16", [
        ("the queue's set", {}, q), ("W evict_first", {"W_HINT": 0}, q),
        ("W evict_normal", {"W_HINT": 2}, q)])


def stores():
    """v34's 16-byte output stores against the 4-byte ones (STORE_VEC 0): the queue's set
    (bs 32) and the default (bs 64), random, M = 4096 and 64."""
    for bs, m, dtype in ((32, 4096, "float16"), (32, 4096, "bfloat16"), (64, 4096, "float16"),
                         (32, 64, "float16"), (64, 64, "float16")):
        compare(bs, "random", m, dtype, [("16-byte stores", {}, {}),
                                          ("4-byte stores", {"STORE_VEC": 0}, {}),
                                          ("16-byte stores again", {}, {})],
                n=8192 if m == 4096 else 16384)


if __name__ == "__main__":
    if sys.argv[1:] == ["stores"]:
        stores()
    elif sys.argv[1:] == ["hints"]:
        hints()
    elif sys.argv[1:] == ["sets"]:
        sets()
    elif sys.argv[1:] == ["knobs"]:
        knobs()
    else:
        for bs in ([int(sys.argv[1][2:])] if sys.argv[1:] else [32, 64]):
            compare(bs, "random", 4096, "float16", VARIANTS[bs])
