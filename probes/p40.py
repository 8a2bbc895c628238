"""Probe 40: where 16-bit bs 64 wgrad should take sddmm_tall.cu's wgmma consumers (v36).

v36's p38 at M = 4096 (H100, C = K = 8192, d = 0.1): random fp16 0.1750 (mma.sync) -> 0.1607 ms
with wgmma consumers, 4 stages and WG_EAGER (bf16 0.1738 -> 0.1606); small world 0.1454 ->
0.1404; Barabasi-Albert 0.1512 -> 0.1522 (2 stages 0.1456). This sweeps M (sddmm_tall.cu serves
M > 64) and the stage count, the segment size by the waves as the launcher picks it.

    PYTHONPATH=.:probes python probes/p40.py

Each line: the layout, dtype and M, then each variant's median wgrad ms (error norm-wise against
float64 over the stored blocks at M <= 1024)."""
import cupy

from _common import fresh, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
ORIG = sp.sddmm_tall_spec
VARIANTS = [("mma.sync", {}, "0"), ("w16 S3", {"WG_EAGER": 1}, "1"),
            ("w16 S4", {"STAGES": 4, "WG_EAGER": 1}, "1"),
            ("w16 S2", {"STAGES": 2, "WG_EAGER": 1}, "1")]
CASES = ([("random", "float16", M) for M in (128, 256, 512, 1024, 2048, 8192)]
         + [("random", "bfloat16", 1024)]
         + [(k, "float16", M) for k in ("barabasi_albert", "small_world") for M in (1024, 8192)])
for kind, dtype, M in CASES:
    sets = problem(M, 8192, 8192, 64, dtype, kind=kind)
    parts = []
    for name, knobs, flag in VARIANTS:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=spec, TALL_WGMMA16=flag),
                          check=M <= 1024)
        parts.append(f"{name} {line}")
    say(f"{kind} {dtype} bs 64 M {M}: " + "; ".join(parts))
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
