"""Probe 45: W multicast in clusters of two row tiles on the queue (CLW 2, v37).

16-bit bs 64 at M = 4096 on the 512-row wgmma queue set moves 0.94 GB through L2, 11% of it
W's blocks (one read per block and row tile), and its loop runs at 96% of the copy ceiling
(docs/perf-notes.md v37). CLW 2 gives a cluster of two CTAs the items of two adjacent row
tiles of one column; rank 0's producer multicasts W's block into both, so W is read from L2
once per two row tiles: 0.94 -> 0.89 GB. Prediction: up to 5% if the loop stays bound by the
bytes and the coupled rings (a stage is refilled once both CTAs released it) cost nothing;
v10 and v22 lost 40-50% to such coupling on other kernels.

    PYTHONPATH=.:probes python probes/p45.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the first) per variant
(the default and CLW 2, twice), fprop E against dense in the same run."""
from _common import queue_knob_sweep, say
from cupy_bsparse import bench

say(bench.gpu_name())
queue_knob_sweep(
    ((64, "random", 4096, "float16"), (64, "small_world", 4096, "float16"),
     (64, "random", 2048, "bfloat16")),
    (("default", {}), ("CLW 2", {"CLW": 2}), ("default", {}), ("CLW 2", {"CLW": 2})))
