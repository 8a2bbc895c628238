"""Probe 38: 16-bit bs 64 wgrad on sddmm_tall.cu's wgmma consumers (docs/perf-notes.md v35).

v35 took bs 64's fprop and bprop at M = 4096 to wgmma consumers on the item queue (0.172 ->
0.139 ms), which left the mma.sync wgrad (0.175 ms with v35's largest-first segments) at
1.25-1.26x their time, the rule's edge. ncu on the wgrad (v35): the tensor pipe 60% busy, the
L2 52%, issue 22%. The opt-in TALL_WGMMA16 consumers take a block a warpgroup (m64n64k16 from
the swizzled tiles, no ldmatrix); the variants release a stage when its own batch completed
(WG_EAGER), run 2 stages at two CTAs an SM or 4 at one, or segments of 2 blocks.

    PYTHONPATH=.:probes python probes/p38.py

Each line: the layout and dtype, then each variant's median wgrad ms (error norm-wise against
float64 over the stored blocks)."""
import cupy

from _common import fresh, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
ORIG = sp.sddmm_tall_spec
VARIANTS = [("mma.sync (default)", {}, {"TALL_WGMMA16": "0"})] + [
    (f"wgmma16 {k or 'held'}", k, {"TALL_WGMMA16": "1"}) for k in [{}] + sp.TALL_WGMMA16_VARIANTS]

for kind, dtype in (("random", "float16"), ("random", "bfloat16"), ("barabasi_albert", "float16"),
                    ("small_world", "float16")):
    sets = problem(4096, 8192, 8192, 64, dtype, kind=kind)
    parts = []
    for name, knobs, attrs in VARIANTS:
        spec = with_knobs(ORIG, knobs) if knobs else ORIG
        line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=spec, **attrs), check=True)
        parts.append(f"{name} {line}")
    say(f"{kind} {dtype} bs 64 M 4096: " + "; ".join(parts))
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
