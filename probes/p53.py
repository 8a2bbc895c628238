"""p53 (perf-notes v52): sddmm_grouped.cu's float32 bs 8 pairs with SADDR (fragment loads from
shared-window addresses: one base register a row set, constant offsets; SASS main loop 15.02 ->
13.61 instructions a tensor-core instruction at M = 4096, -9.4%) against the default, on top of
TF32_REDO: wgrad ms alternated twice, the blocks compared bitwise, and the time over x @ W's.
Random and Barabasi-Albert at M = 4096, C = K = 8192; random at M = 64, C = K = 16384.

    PYTHONPATH=.:probes python3 probes/p53.py
"""
import cupy

from _common import fresh, patched, problem, say, t_dsd, t_wgrad, wgrad_err, with_knobs
from cupy_bsparse import _specs, bench

say(bench.gpu_name())
for kind, M, C in [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    tf, _ = t_dsd(sets, "fprop")
    runs, blocks = [], {}
    for label, knobs in [("default", {}), ("SADDR", {"SADDR": 1})] * 2:
        fresh(sets)
        fn = with_knobs(_specs.sddmm_grouped_spec, knobs) if knobs else _specs.sddmm_grouped_spec
        with patched(_specs, sddmm_grouped_spec=fn):
            t, (_, _, out) = t_wgrad(sets)
        blocks.setdefault(label, out.data.view(cupy.uint32).copy())
        runs.append(f"{label} {t:.4f} ({t / tf:.3f}x, err {wgrad_err(sets[0], out):.1e})")
    same = bool((blocks["default"] == blocks["SADDR"]).all())
    say(f"{kind} float32 bs 8 M {M} C {C}: fprop {tf:.4f}; wgrad " + "; ".join(runs)
        + f"; SADDR == default bitwise: {same}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
