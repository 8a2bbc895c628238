"""p52 (perf-notes v52): float32's 3xTF32 split without its clamp (tf32x3.cuh TF32_CLAMP).

1. sddmm_grouped.cu's bs 8 pairs with TF32_REDO (``_specs.TF32_REDO``: the clamp-free split, an
   item again with the clamp where a sum is NaN; bit for bit the default's blocks): wgrad ms
   default / redo alternated twice, the blocks compared bitwise, and the time over x @ W's.
   Random and Barabasi-Albert (its hybrid's rest part) at M = 4096, C = K = 8192; random at
   M = 64, C = K = 16384. SASS predicted 18.92 -> 15.02 instructions a tensor-core
   instruction in the main loop (-20.6%); at the measured 52% issue utilisation, about 10%.
2. sddmm_tall.cu's float32 bs 16 wgrad with TF32_REDO at M = 4096, random and
   Barabasi-Albert (SASS: 10.79 -> 8.67 instructions a tensor-core instruction, -19.6%).
3. The bound for dsd_stream.cu (no redo there yet): TF32_CLAMP 0 (no clamp: wrong for infinite
   inputs, right on these normal ones) on its bs 16 x @ W / dy @ W^T at M = 64.

    PYTHONPATH=.:probes python3 probes/p52.py [quick]
"""
import sys

from _common import fresh, free, patched, problem, say, t_dsd, wgrad_ab, with_knobs
from cupy_bsparse import _specs, bench


def redo(value):
    return lambda: patched(_specs, TF32_REDO=value)


say(bench.gpu_name())
quick = "quick" in sys.argv
ab = [("clamped", redo("0")), ("redo", redo("1"))]   # "0" was the default before v52
cases = [("random", 4096, 8192), ("barabasi_albert", 4096, 8192), ("random", 64, 16384)]
for kind, M, C in cases[:2] if quick else cases:
    sets = problem(M, C, C, 8, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 8 M {M} C {C}")
    free(sets)

# sddmm_tall.cu's float32 bs 16 consumers with TF32_REDO (SASS: 10.79 -> 8.67 instructions a
# tensor-core instruction, -19.6%), random and Barabasi-Albert
for kind in ("random", "barabasi_albert"):
    sets = problem(4096, 8192, 8192, 16, "float32", kind=kind)
    wgrad_ab(sets, ab, f"{kind} float32 bs 16 M 4096 (sddmm_tall.cu)")
    free(sets)

if not quick:
    sets = problem(64, 16384, 16384, 16, "float32", kind="random")
    td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
    runs = []
    for label, knobs in [("default", {}), ("no clamp", {"TF32_CLAMP": 0})] * 2:
        fresh(sets)
        fn = with_knobs(_specs.dsd_stream_spec, knobs) if knobs else _specs.dsd_stream_spec
        with patched(_specs, dsd_stream_spec=fn):
            f, _ = t_dsd(sets, "fprop")
            b, _ = t_dsd(sets, "bprop")
        runs.append(f"{label} {f:.4f} / {b:.4f} (E {0.1 * td / f:.3f} / {0.1 * td / b:.3f})")
    say(f"random float32 bs 16 M 64 C 16384 (dsd_stream.cu; dense {td:.4f}): x @ W / dy @ W^T "
        + "; ".join(runs))
    free(sets)
