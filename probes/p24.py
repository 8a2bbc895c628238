"""Probe 24: the H100 sweep of the tile knobs of two unmet wgrad rows at M = 4096 (C = K = 8192,
d = 0.1, random layout), on sddmm_tall.cu: float32 bs 16 (v24: 1.60 ms in launches of 1024 rows,
1.43x fprop, E 0.656; target E 0.7 and 1.25x, so <= 1.40 ms) and 16-bit bs 32 (fp16: 1.48x
fprop, E 0.173; target E 0.22 and 1.25x). Their specs were swept on the H200 (v9-v17); the H100
has 70% of its HBM bandwidth and the same L2. docs/perf-notes.md v25.

    PYTHONPATH=. python probes/p24.py [f16|by_m|f16c]    (rounds 2 and 3, below)

Each line: a knob set (#defines over the default spec; "chunk" = SDDMM_M_CHUNK rows a launch)
and its median ms; the default first.
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_wgrad, patched, wgrad_line, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402
from cupy_bsparse._arrays import BFLOAT16  # noqa: E402

say(bench.gpu_name())

F32_BS16 = [{}, {"chunk": 512}, {"chunk": 2048},
            {"STAGES": 2}, {"STAGES": 4}, {"STAGES": 2, "chunk": 512},
            {"NB": 16}, {"NB": 16, "STAGES": 2}, {"NB": 4}, {"NB": 4, "BPW": 1},
            {"BPW": 1}, {"BPW": 4}, {"BK": 16, "STAGES": 4}, {"BK": 64, "STAGES": 2},
            {"KSUM": 16}, {"X_HINT": 2, "D_HINT": 2}, {"D_HINT": 0}]
F16_BS32 = [{}, {"STAGES": 2}, {"STAGES": 4}, {"NB": 4}, {"NB": 16}, {"NB": 16, "STAGES": 2},
            {"BK": 64, "STAGES": 2}, {"BK": 64}, {"BK": 16, "STAGES": 6},
            {"WARPS_M": 2}, {"X_HINT": 2, "D_HINT": 2}, {"D_HINT": 0}]


#: round 2 (after round 1's 16-bit bs 32 wgrad: STAGES 2 0.307, NB 4 0.334, WARPS_M 2 0.325
#: against 0.420 ms): the combinations, and dsd_stream.cu's 16-bit fprop / bprop at M = 4096
#: (bs 32 E 0.215 against 0.22; bs 64 0.357 against 0.45), whose specs v6 swept on the H200.
F16_BS32_2 = [{}, {"STAGES": 2}, {"STAGES": 2, "NB": 4}, {"STAGES": 2, "WARPS_M": 2},
              {"STAGES": 2, "NB": 4, "WARPS_M": 2}, {"NB": 4, "WARPS_M": 2}, {"STAGES": 2, "BK": 16},
              {"STAGES": 3, "BK": 16}, {"STAGES": 2, "NB": 16}, {"STAGES": 2, "D_HINT": 2}]
DSD_F16 = {32: [{}, {"STAGES": 2}, {"STAGES": 3}, {"STAGES": 5}, {"BM": 128}, {"BM": 128, "STAGES": 3},
                {"BM": 128, "STAGES": 2}, {"BM": 128, "WARPS_M": 2}, {"W_HINT": 2}, {"X_HINT": 2}],
           64: [{}, {"STAGES": 2}, {"STAGES": 4}, {"BM": 256, "WARPS_M": 4}, {"BM": 256, "WARPS_M": 4, "STAGES": 2},
                {"BM": 64, "WARPS_M": 1}, {"BM": 64, "WARPS_M": 1, "STAGES": 4}, {"W_HINT": 2}, {"X_HINT": 2}]}


#: round 3 (not run yet; for the next session): 16-bit bs 32 fprop / bprop at M = 4096 with taller
#: M tiles, so W's blocks are re-read by 8 M tiles, not 16 (x's tile bytes, 1.72 GB, do not
#: depend on BM; W's fall 0.21 -> 0.11 GB: about 5% of the bytes, against the 2.3% the row
#: lacks). ptxas, sm_90: BM 512 with 8 warps 126 registers (one CTA an SM by registers), BM 256
#: with 8 warps 70 (three).
DSD_F16_3 = [{}, {"BM": 512, "WARPS_M": 8, "STAGES": 3}, {"BM": 512, "WARPS_M": 8, "STAGES": 2},
             {"BM": 256, "WARPS_M": 8}, {"BM": 256, "WARPS_M": 8, "STAGES": 3}]


def sweep_dsd(bs, dtype, cases):
    from _common import t_dsd
    sets = problem(4096, 8192, 8192, bs, dtype)
    orig = sp.dsd_stream_spec
    did = sp.dtype_id(dtype)
    assert sp.dsd_kernel(bs, did, 4096) == "stream"
    say(f"{dtype} bs {bs} x @ W / x @ W^T, M 4096, default spec {dict(orig(bs, did, 4096, False, True))}")
    for knobs in cases:
        line = []
        for op in ("fprop", "bprop"):
            fresh(sets)
            try:
                with patched(sp, dsd_stream_spec=with_knobs(orig, knobs)):
                    t, _ = t_dsd(sets, op)
                line.append(f"{t:.4f}")
            except Exception as e:   # a probe: report and go on
                line.append(f"ERROR {type(e).__name__}: {str(e)[:150]}")
        say(f"   {knobs or 'default'}: {' / '.join(line)} ms")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def sweep(bs, dtype, cases):
    sets = problem(4096, 8192, 8192, bs, dtype)
    orig = sp.sddmm_tall_spec
    did = sp.dtype_id(dtype)
    say(f"{dtype} bs {bs} wgrad M 4096, default spec {dict(orig(bs, did, 4096, True))}, chunk "
        f"{sp.sddmm_m_chunk('tall', did, 4096, bs)}")
    for knobs in cases:
        knobs = dict(knobs)
        chunk = knobs.pop("chunk", None)
        line = wgrad_line(sets, lambda: patched(sp, sddmm_tall_spec=with_knobs(orig, knobs),
                                                **({"SDDMM_M_CHUNK": chunk} if chunk else {})))
        say(f"   {knobs or 'default'}{f' chunk {chunk}' if chunk else ''}: {line} ms")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def by_m():
    """16-bit bs 32 wgrad (fp16) STAGES 2 against 3 over M (the spec does not depend on M), and
    bs 64 at M = 4096."""
    orig = sp.sddmm_tall_spec
    for bs, ms in ((32, (128, 256, 512, 1024, 2048, 4096)), (64, (4096,))):
        for M in ms:
            sets = problem(M, 8192, 8192, bs, "float16")
            assert sp.sddmm_kernel(bs, 1, M) == "tall"
            line = []
            for st in (3, 2):
                fresh(sets)
                with patched(sp, sddmm_tall_spec=with_knobs(orig, {"STAGES": st})):
                    t, _ = t_wgrad(sets)
                line.append(f"STAGES {st} {t:.4f}")
            say(f"fp16 bs {bs} wgrad M {M}: " + ", ".join(line) + " ms")
            del sets
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    if sys.argv[1:] == ["by_m"]:
        by_m()
    elif sys.argv[1:] == ["f16c"]:
        for dt in ("float16", BFLOAT16):
            sweep_dsd(32, dt, DSD_F16_3)
    elif sys.argv[1:] == ["f16"]:
        for dt in ("float16", BFLOAT16):
            sweep(32, dt, F16_BS32_2)
        for bs in (32, 64):
            sweep_dsd(bs, "float16", DSD_F16[bs])
    else:
        sweep(16, "float32", F32_BS16)
        sweep(32, "float16", F16_BS32)
