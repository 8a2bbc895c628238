"""p51 (perf-notes v50): float32 wgrad's row chunks in one launch of sddmm_tall.cu
(``_specs.SDDMM_MERGE_CHUNKS``, MCH) against a launch a chunk, at chunks of 1024 (the default),
512 and 256 rows (``SDDMM_M_CHUNK``): wgrad ms (errors against float64), alternated twice,
and the time over x @ W's. The CPU model predicted bs 16 at M = 4096 3-7% faster at 1024 rows
(random 1.58 -> 1.46-1.53 ms); smaller chunks had lost only to their launches' tails (v23:
1.616 / 1.665 / 1.769 ms at 1024 / 512 / 256). Also float32 bs 8 on Barabasi-Albert, whose
hybrid's coarse part (bs 16) runs in chunks. C = K = 8192, d 0.1.

    PYTHONPATH=.:probes python3 probes/p51.py [quick]
"""
import sys

import cupy

from _common import fresh, patched, problem, say, t_dsd, t_wgrad, wgrad_err
from cupy_bsparse import _specs, bench

say(bench.gpu_name())
cases = [("random", 16), ("barabasi_albert", 16), ("small_world", 16)]
if "quick" not in sys.argv:
    cases += [("barabasi_albert", 8), ("random", 8)]
variants = [("1024 x4", "0", None), ("1024 merged", "1", None),
            ("512 merged", "1", 512), ("256 merged", "1", 256)]
for kind, bs in cases:
    sets = problem(4096, 8192, 8192, bs, "float32", kind=kind)
    tf, _ = t_dsd(sets, "fprop")
    runs = []
    for label, merge, rows in variants * 2:
        fresh(sets)
        with patched(_specs, SDDMM_MERGE_CHUNKS=merge, SDDMM_M_CHUNK=rows):
            t, (_, _, out) = t_wgrad(sets)
        runs.append(f"{label}: {t:.4f} ({t / tf:.2f}x, err {wgrad_err(sets[0], out):.1e})")
    say(f"{kind} float32 bs {bs} M 4096 nnzb {sets[0]['w'].nnzb}: fprop {tf:.4f}; wgrad "
        + "; ".join(runs))
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
