"""Probe 42: the item queue's switch between items, the next item's fields loaded early (IPF).

On the queue (dsd_stream.cu QUEUE 1) the producer takes an item's successor from the counter at
the item's start, but loads its chunk record and then its first entry only at the switch: two
dependent global loads (about 1 us) before the next item's first copy can be issued, on a ring
whose round trip already sets the pace (v35: 16-bit bs 64 at M = 4096, a step's median period
1.0 us, its mean 1.27 us; about 7.8 items an SM). IPF 1 loads the chunk at the item's second
step and the entry at its third. Prediction: up to 0.6 us an item, 3%.

    PYTHONPATH=.:probes python probes/p42.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the default's) without
and with IPF, fprop E against dense in the same run."""
import cupy

from _common import fprop_bprop, fresh, patched, problem, say, with_knobs
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
SPEC = sp.dsd_stream_spec


def queue_knobs(knobs):
    """dsd_stream_spec with ``knobs`` set where the spec is on the queue (IPF has no meaning, and
    an #error, elsewhere: Barabasi-Albert bs 32 falls back to a set without the queue)."""
    on = with_knobs(SPEC, knobs)
    return lambda *a, **k: on(*a, **k) if dict(SPEC(*a, **k)).get("QUEUE") else SPEC(*a, **k)

for bs, kind, M, dtype in ((64, "random", 4096, "float16"), (64, "random", 4096, "bfloat16"),
                           (64, "random", 8192, "float16"), (64, "random", 1024, "float16"),
                           (64, "barabasi_albert", 4096, "float16"),
                           (64, "small_world", 4096, "float16"),
                           (32, "random", 4096, "float16"), (32, "barabasi_albert", 4096, "float16")):
    data = problem(M, 8192, 8192, bs, dtype, kind=kind)
    td = bench.time_cuda(lambda a, b: a @ b, [(data[0]["x"], data[0]["w"].toarray())], 3, 20)
    ref = {}
    parts = []
    for name, knobs in (("IPF 0", {"IPF": 0}), ("IPF 1", {"IPF": 1}), ("IPF 0", {"IPF": 0}),
                        ("IPF 1", {"IPF": 1})):
        spec = queue_knobs(knobs)
        line = fprop_bprop(data, ref, lambda: patched(sp, dsd_stream_spec=spec))
        f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
        parts.append(f"{name} {line} E {0.1 * td / f:.3f}")
    say(f"{dtype} bs {bs} {kind} M {M} (dense {td:.4f}): " + "; ".join(parts))
    del data
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
