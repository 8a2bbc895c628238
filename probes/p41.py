"""Probe 41: L2 eviction hints on 16-bit bs 64 at large M (v36).

v35's ncu of x @ W on the item queue (fp16 bs 64, M = 4096, C = K = 8192): 133 MB read from
DRAM against the 77 MB of x and W once, and v35's timeline a copy's p90 round trip of 4.2 us
against a 2.25 us median. Every TMA copy asks for evict_last (X_HINT 1, W_HINT 1), which v6
chose for row tiles walked without the queue; on the queue the CTAs work on about one row
tile, x's 8 MB, so evict_last on finished row tiles may only crowd the L2. The same for
sddmm_tall.cu's wgrad (X_HINT, D_HINT). Hints: 0 evict_first, 1 evict_last, 2 evict_normal.

    PYTHONPATH=.:probes python probes/p41.py

Each line: the case, then per hint pair x @ W / x @ W^T median ms (max error against the first),
or the wgrad's ms."""
import cupy

from _common import fprop_bprop, fresh, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
SPEC, TALL = sp.dsd_stream_spec, sp.sddmm_tall_spec
for kind, M in (("random", 4096), ("random", 8192), ("barabasi_albert", 4096),
                ("small_world", 4096)):
    data = problem(M, 8192, 8192, 64, "float16", kind=kind)
    ref = {}
    parts = []
    for xh, wh in ((1, 1), (2, 1), (2, 2), (0, 1), (1, 2)):
        spec = with_knobs(SPEC, {"X_HINT": xh, "W_HINT": wh})
        parts.append(f"x{xh} w{wh} " + fprop_bprop(data, ref, lambda: patched(sp, dsd_stream_spec=spec)))
    say(f"{kind} fp16 bs 64 M {M} fprop / bprop: " + "; ".join(parts))
    parts = []
    for xh, dh in ((1, 1), (2, 2), (2, 1), (1, 2), (0, 0)):
        spec = with_knobs(TALL, {"X_HINT": xh, "D_HINT": dh})
        parts.append(f"x{xh} d{dh} " + wgrad_line(data, lambda: patched(sp, sddmm_tall_spec=spec)))
    say(f"{kind} fp16 bs 64 M {M} wgrad: " + "; ".join(parts))
    del data
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
