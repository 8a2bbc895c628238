"""Probe 43: the item queue's tail, the last row tiles' items interleaved (ILV, v36).

v36's timeline of 16-bit bs 64 at M = 4096 (512-row queue set): 99.3 steps a CTA on average,
109 at most; the loop spans 127.5 us at the median and 133.8 at most against a 138.4 us kernel.
The queue hands out items row tile after row tile, each tile's columns longest first, so the
last wave holds the last tile's columns only. ILV n interleaves the last n row tiles' items
column by column, so the last items out are the shortest of n tiles. Prediction: up to the
6 us between the median and the longest loop, 1-3%.

    PYTHONPATH=.:probes python probes/p43.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the first) per variant
(the default twice), fprop E against dense in the same run."""
import cupy

from _common import fprop_bprop, fresh, patched, problem, say, with_knobs
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
SPEC = sp.dsd_stream_spec


def queue_knobs(knobs):
    """dsd_stream_spec with ``knobs`` set where the spec is on the queue."""
    on = with_knobs(SPEC, knobs)
    return lambda *a, **k: on(*a, **k) if dict(SPEC(*a, **k)).get("QUEUE") else SPEC(*a, **k)


for bs, kind, M, dtype in ((64, "random", 4096, "float16"), (64, "random", 4096, "bfloat16"),
                           (64, "small_world", 4096, "float16"),
                           (64, "barabasi_albert", 4096, "float16"),
                           (64, "random", 8192, "float16"), (64, "random", 2048, "float16"),
                           (32, "random", 4096, "float16")):
    data = problem(M, 8192, 8192, bs, dtype, kind=kind)
    td = bench.time_cuda(lambda a, b: a @ b, [(data[0]["x"], data[0]["w"].toarray())], 3, 20)
    ref = {}
    parts = []
    for name, knobs in (("default", {}), ("ILV 2", {"ILV": 2}), ("ILV 4", {"ILV": 4}),
                        ("ILV 8", {"ILV": 8}), ("default", {}), ("ILV 2", {"ILV": 2})):
        spec = queue_knobs(knobs) if knobs else SPEC
        line = fprop_bprop(data, ref, lambda: patched(sp, dsd_stream_spec=spec))
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        parts.append(f"{name} {line} E {0.1 * td / f:.3f}")
    say(f"{dtype} bs {bs} {kind} M {M} (dense {td:.4f}): " + "; ".join(parts))
    del data
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
