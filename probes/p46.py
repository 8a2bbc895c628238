"""Probe 46: y's L2 eviction hint on the item queue at large M (Y_HINT, v38).

16-bit bs 64 at M = 4096 writes y's 67 MB through the L2 while x's live row tile (8 MB,
evict_last) and W (13.4 MB, evict_normal) are re-read from it. v35's ncu read 133 MB from
DRAM against the 77 MB of x and W once: about 56 MB of re-fetches, most likely W's blocks
pushed out between row tiles by y's lines. A copy that misses to DRAM lands late, and the
3-stage ring is bound by its round trip (v36: p90 4.3 us against a 2.2 us median). Y_HINT 0
stores y with an evict_first policy, so y's lines go first. Prediction: W's re-fetches gone,
the copies' latency tail shorter, up to 2-3% on random layouts; nothing where x is what
misses. Also W evict_last with it (v36 measured W evict_last alone 1.5% slower).

    PYTHONPATH=.:probes python probes/p46.py

Each line: the case, then x @ W / x @ W^T median ms (max error against the first) per variant
(the default and Y_HINT 0 twice), fprop E against dense in the same run."""
from _common import queue_knob_sweep, say
from cupy_bsparse import bench

say(bench.gpu_name())
queue_knob_sweep(
    ((64, "random", 4096, "float16"), (64, "random", 4096, "bfloat16"),
     (64, "small_world", 4096, "float16"), (64, "random", 8192, "float16"),
     (32, "random", 4096, "float16")),
    (("default", {}), ("Y_HINT 0", {"Y_HINT": 0}), ("Y_HINT 0 W_HINT 1", {"Y_HINT": 0, "W_HINT": 1}),
     ("default", {}), ("Y_HINT 0", {"Y_HINT": 0})))
