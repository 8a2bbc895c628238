"""Probe 29: 16-bit bs 32 wgrad on sddmm_tall.cu (segments of one block-row) by CTAs an SM and
segment size, M = 4096, C = K = 8192, d = 0.1. p28's timeline (docs/perf-notes.md v31) has each
CTA's step set by its copies' latency (the consumers wait 60% of a step), so the time follows
the waves of segments: 984 segments on small world at three CTAs an SM (65 registers, 9 warps)
are 2.48 waves, and a latency-bound tail wave costs about a whole one. NB 7 (8 warps of 64
registers) fits four CTAs an SM (1.96 waves). v31's register caps (MAXNREG 48-64, a probe knob
of the mma.sync consumers) lost to NB 7 and are removed.

    PYTHONPATH=. python probes/p29.py [first | bf16 | m | bs64 | extra | bs64sweep | auto | stores]

Each line: the knobs, the registers and spill bytes ptxas reports, the CTAs an SM that
allows, the segments and waves (132 SMs), median ms and the error against float64.
first: v31's first pass on small world (NB 6-9). bf16: NB 7 against NB 8 at
bfloat16 on small world and random. m: the same at fp16 at M = 256, 1024 and 2048. bs64: fp16 bs 64 (NB 4: one CTA an SM at 131
registers and 121 KB) against NB 3 and 2 (two and three CTAs) and 2 stages. extra: bs 64
NB 2 on Barabasi-Albert (v30's 2-D items at NB 7 on small world: removed with them). bs64sweep:
bs 64 NB 4 against NB 2 at M = 1024, 2048, 8192 and d = 0.05, 0.2 on three layouts (v31's
next: does the waves count of NB 2's segments say where it wins?). auto: v32's launcher rule
(NB 2 where NB 4's last wave holds under a quarter of the SMs) against NB 4 and NB 2 forced,
fp16 and bf16, C = K = 8192, 2048 and 1024. stores: v34's 16-byte output stores against the
4-byte ones (STORE_VEC 0), fp16 / bf16 bs 32 and fp16 bs 64, random."""
import os
import sys

import cupy
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import fresh, patched, problem, say, wgrad_line, with_knobs  # noqa: E402
from cupy_bsparse import _gpu_ops as g, _specs as sp, bench, compiler  # noqa: E402

CASES = [{}, {"NB": 7}, {"NB": 7, "STAGES": 3}, {"NB": 5}, {"NB": 7}, {}]
FIRST = [{}, {"NB": 7}, {"NB": 6}, {"NB": 9}]   # v31's first pass (small world): NB 7 won
_occupancy = {}
SMS = 132


def occupancy(spec):
    """(registers, spill bytes, CTAs an SM by registers and shared memory) of a sddmm_tall spec:
    cuda_occupancy.h's rule, 16384 registers a sub-partition in 256-register steps a warp
    (compiled once a spec)."""
    if spec not in _occupancy:
        _occupancy[spec] = _occupancy_of(spec)
    return _occupancy[spec]


def _occupancy_of(spec):
    _, log = compiler.compile_cubin("sddmm_tall.cu", spec, "90")
    usage = compiler.resource_usage(log)
    regs, spill = usage["registers"], usage["spill_stores"]
    if regs < 0:
        say(f"   (no ptxas report: {log[:300]!r})")
        return 0, 0, 0
    threads, smem, _ = sp.sddmm_tall_launch_shape(spec)
    warps = threads // 32
    per_warp = -(-regs * 32 // 256) * 256
    by_regs = (16384 // per_warp) * 4 // warps
    by_smem = (228 * 1024) // (smem + 1024)
    return regs, spill, min(by_regs, by_smem, 64 // warps)


def run(kind, dtype="float16", m=4096, n=8192, cases=CASES, bs=32, density=0.1, pick=False):
    sets = problem(m, n, n, bs, dtype, kind=kind, density=density)
    rows = cupy.asnumpy(sets[0]["w"].layout.toarray()).sum(1)
    orig = sp.sddmm_tall_spec
    say(f"{dtype} bs {bs} {kind} d {density}, M {m}, C = K = {n}: wgrad, default spec "
        f"{dict(orig(bs, sp.dtype_id(dtype), m))}")
    for knobs in cases:
        spec = with_knobs(orig, knobs)(bs, sp.dtype_id(dtype), m)
        regs, spill, ctas = occupancy(spec)
        segs = int(np.ceil(rows / dict(spec)["NB"]).sum())
        line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=with_knobs(orig, knobs)),
                          check=True)
        say(f"   {str(knobs or 'default'):28s} {regs} regs, {spill:3d} B spill, {ctas} CTAs/SM, "
            f"{segs} segs, {segs / (max(ctas, 1) * SMS):.2f} waves: {line}")
        if pick and not knobs:   # the launcher's segment size for this layout (v32)
            say(f"   (the launcher picks NB {g._tall_nb(sets[0]['w'].layout, bs, sp.dtype_id(dtype), m)})")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    say(bench.gpu_name())
    if "bf16" in sys.argv[1:]:
        for kind in ("small_world", "random"):
            run(kind, "bfloat16", cases=[{}, {"NB": 7}, {}])
    elif "bs64" in sys.argv[1:]:
        for kind in ("small_world", "random"):
            run(kind, bs=64, cases=[{}, {"NB": 3}, {"NB": 2}, {"NB": 3, "STAGES": 2},
                                    {"NB": 4, "STAGES": 2}, {}])
    elif "bs64sweep" in sys.argv[1:]:
        for kind in ("small_world", "random", "barabasi_albert"):
            for m, d in ((1024, 0.1), (2048, 0.1), (8192, 0.1), (4096, 0.05), (4096, 0.2)):
                run(kind, m=m, bs=64, density=d, cases=[{}, {"NB": 2}])
    elif "auto" in sys.argv[1:]:
        # v32's launcher rule (sddmm_tall_segment_size) against NB 4 and NB 2 forced
        for dtype, kind, n, d in (("float16", "small_world", 8192, 0.1),
                                  ("float16", "random", 8192, 0.1),
                                  ("float16", "barabasi_albert", 8192, 0.1),
                                  ("bfloat16", "small_world", 8192, 0.1),
                                  ("bfloat16", "barabasi_albert", 8192, 0.2),
                                  ("float16", "random", 1024, 0.1),
                                  ("float16", "small_world", 2048, 0.1),
                                  ("float16", "random", 2048, 0.05)):
            run(kind, dtype, n=n, bs=64, density=d, cases=[{}, {"NB": 4}, {"NB": 2}], pick=True)
    elif "stores" in sys.argv[1:]:
        # v34: y's 16-byte stores (common.cuh store_tiles) against STORE_VEC 0 (4-byte), A, B, A
        for dtype, bs in (("float16", 32), ("bfloat16", 32), ("float16", 64)):
            run("random", dtype, bs=bs, cases=[{}, {"STORE_VEC": 0}, {}])
    elif "extra" in sys.argv[1:]:
        run("barabasi_albert", bs=64, cases=[{}, {"NB": 2}, {}])
    elif "first" in sys.argv[1:]:
        run("small_world", cases=FIRST)
    elif "m" in sys.argv[1:]:
        for m in (256, 1024, 2048):
            for kind in ("small_world", "random"):
                run(kind, m=m, cases=[{}, {"NB": 7}, {}])
    else:
        for kind in ("small_world", "random", "barabasi_albert"):
            run(kind)
