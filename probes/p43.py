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
from _common import queue_knob_sweep, say
from cupy_bsparse import bench

say(bench.gpu_name())
queue_knob_sweep(
    ((64, "random", 4096, "float16"), (64, "random", 4096, "bfloat16"),
     (64, "small_world", 4096, "float16"), (64, "barabasi_albert", 4096, "float16"),
     (64, "random", 8192, "float16"), (64, "random", 2048, "float16"),
     (32, "random", 4096, "float16")),
    (("default", {}), ("ILV 2", {"ILV": 2}), ("ILV 4", {"ILV": 4}), ("ILV 8", {"ILV": 8}),
     ("default", {}), ("ILV 2", {"ILV": 2})))
