"""Probe 17: float32 (3xTF32) dsd with x split ahead (F32_SPLIT, docs/perf-notes.md v18)
against the default (every x fragment split in registers, once per stored block that uses it).

- bs 8 on dsd_grouped_tma.cu: "pass" (XLO 1: all of x split by split_tf32.cu, its lo plane
  copied beside each slab);
- bs 16 / 32 / 64 on dsd_stream.cu: "pass" (XLO 1).
v21 also timed "slab" at bs 8 (XPRE 1: each step's slab split once in shared memory; slower,
removed). v18 also timed the bs 8 wgrad on sddmm_grouped.cu's pairs with x and dy split ahead
("pass", 1.1-1.7x slower) and the bs 16 wgrad on sddmm_grouped.cu with each step's tiles split
in shared memory ("slab", not taken: v21); both are removed.
x @ W and x @ W^T at M = 64 (C = K = 16384), and bs 8 at M = 4096 (C = K = 8192), d = 0.1
random. Each line: median ms, max |diff| / max |ref| against the default, and whether the
outputs are bitwise equal (expected where the steps are the same: "pass" at bs 8 and M = 64
keeps KW, CAP and the CTAs per SM). Also the split pass alone on x.

    PYTHONPATH=. python probes/p17.py
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, clear, t_dsd, err  # noqa: E402
from cupy_bsparse import _specs as sp, _gpu_ops as g, bench  # noqa: E402

say(bench.gpu_name())


CASES = [(8, 64, 16384, ("pass",)), (16, 64, 16384, ("pass",)),
         (32, 64, 16384, ("pass",)), (64, 64, 16384, ("pass",)),
         (8, 4096, 8192, ("pass",))]
for bs, M, C, modes in CASES:
    sets = problem(M, C, C, bs, "float32")
    xs = sets[0]["x"]
    t_split = bench.time_cuda(g.split_tf32, [(s["x"],) for s in sets], 3, 20)
    say(f"bs {bs} M={M}: split_tf32 of x ({xs.shape[0]} x {xs.shape[1]}): {t_split:.4f} ms")
    for op in ("fprop", "bprop"):
        sp.F32_SPLIT = "off"
        clear(sets)
        t0, ref = t_dsd(sets, op)
        kind = sp.dsd_kernel(bs, 0, M)
        base = g._dsd_launch(bs, 0, M, op == "bprop", kind)[4]
        say(f"bs {bs} M={M} {op} ({kind}): default {t0:.4f} ms")
        for mode in modes:
            sp.F32_SPLIT = mode
            clear(sets)
            try:
                t, got = t_dsd(sets, op)
            except Exception as e:   # a probe: report and go on
                say(f"   {mode}: ERROR {type(e).__name__}: {str(e)[:200]}")
                continue
            spec = g._dsd_launch(bs, 0, M, op == "bprop", kind)[4]
            knobs = {k: spec[k] for k in ("KW", "CAP", "STAGES", "XLO") if k in spec}
            changed = {k: (base.get(k), v) for k, v in knobs.items() if base.get(k) != v}
            say(f"   {mode} {changed}: {t:.4f} ms ({t0 / t:.2f}x)  diff/max {err(got, ref):.2e}"
                f"  bitwise {bool(cupy.array_equal(got, ref))}")
        sp.F32_SPLIT = "off"
    del sets
    cupy.get_default_memory_pool().free_all_blocks()
