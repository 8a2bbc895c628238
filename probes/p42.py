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
from _common import queue_knob_sweep, say
from cupy_bsparse import bench

say(bench.gpu_name())
queue_knob_sweep(
    ((64, "random", 4096, "float16"), (64, "random", 4096, "bfloat16"),
     (64, "random", 8192, "float16"), (64, "random", 1024, "float16"),
     (64, "barabasi_albert", 4096, "float16"), (64, "small_world", 4096, "float16"),
     (32, "random", 4096, "float16"), (32, "barabasi_albert", 4096, "float16")),
    (("IPF 0", {"IPF": 0}), ("IPF 1", {"IPF": 1}), ("IPF 0", {"IPF": 0}), ("IPF 1", {"IPF": 1})))
