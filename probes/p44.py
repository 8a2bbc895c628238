"""Probe 44: the kernel's start, v37: the first items without the counter (QFIRST) and the
tensor maps' descriptors prefetched (TMPF), dsd_stream.cu.

Before a CTA's first copy its producer waits for the counter's atomic (the queue), then the
item's chunk and first entry, then the TMA unit's fetch of the descriptor. Each is a round
trip of about 0.5-1 us, against a 138 us kernel at M = 4096 (16-bit bs 64) and 26 us at M = 64.
Prediction: QFIRST about 0.5-1 us at M = 4096; TMPF up to 0.5 us everywhere (1-2% at M = 64).

    PYTHONPATH=.:probes python probes/p44.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the first) per variant
(on and off, twice; v37's run printed "on" as "default"), fprop E against dense in the same run."""
from _common import queue_knob_sweep, say, with_knobs
from cupy_bsparse import _specs, bench

OFF = {"QFIRST": 0, "TMPF": 0}    # v36's start (v37 ran this with both on by default, c7003bc;
ON = {"QFIRST": 1, "TMPF": 1}     # they are off again: "off" is the default, "default" is ON)
say(bench.gpu_name())
queue_knob_sweep(
    ((64, "random", 4096, "float16"), (64, "random", 2048, "float16"),
     (32, "random", 4096, "float16")),
    (("on", ON), ("off", OFF), ("QFIRST only", {"QFIRST": 1}), ("on", ON), ("off", OFF)))
# M = 64 (no queue): TMPF on and off on every dsd_stream spec
queue_knob_sweep(
    ((64, "random", 64, "float16"), (32, "random", 64, "float16"),
     (16, "random", 64, "float32")),
    (("on", {"TMPF": 1}), ("off", {"TMPF": 0}), ("on", {"TMPF": 1}), ("off", {"TMPF": 0})),
    C=16384, knobbed=lambda knobs: with_knobs(_specs.dsd_stream_spec, knobs))
