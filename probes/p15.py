"""Probe 15: bs 8 wgrad (pairs) on
sddmm_grouped_tma.cu against sddmm_grouped.cu (cp.async, the default), fp16 / bf16 / float32 at
M = 64 (C = K = 16384) and M = 4096 (C = K = 8192), d = 0.1 random; outputs against the cp.async
kernel's; then item and step variants."""
import os, sys
import cupy, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, t_wgrad, reset, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench
from cupy_bsparse._arrays import BFLOAT16
from cupy_bsparse.ops import sddmm

say(bench.gpu_name())
orig = sp.sddmm_grouped_tma_spec
CUR = {"v": None}


def spec(bs, did, M=64):
    p = dict(orig(bs, did, M))
    if CUR["v"] and bs == 8:
        p.update(CUR["v"])
    return tuple(sorted(p.items()))


sp.sddmm_grouped_tma_spec = spec
# (dtype name, M) -> variants; all compile without spills and fit in shared memory (checked on
# the CPU)
VARIANTS = {("float16", 64): [dict(STAGES=2), dict(STAGES=4), dict(MK=64, STAGES=2),
                              dict(NBLK=64, NW=8), dict(R=64, NBLK=256, NW=16, MIN_CTAS=1)],
            ("float16", 4096): [dict(STAGES=2), dict(MK=32, STAGES=2), dict(NBLK=128),
                                dict(NW=8, NBLK=128, MIN_CTAS=2)],
            ("float32", 64): [dict(STAGES=2), dict(STAGES=4), dict(MK=32, STAGES=2, MIN_CTAS=1),
                              dict(NBLK=64, NW=8), dict(R=64, NBLK=256, NW=16, MIN_CTAS=1)],
            ("float32", 4096): [dict(STAGES=2), dict(NBLK=128), dict(NW=8, NBLK=128, MIN_CTAS=2)]}
for dtype, M, C in ((np.float16, 64, 16384), (BFLOAT16, 64, 16384), (np.float32, 64, 16384),
                    (np.float16, 4096, 8192), (np.float32, 4096, 8192)):
    name = np.dtype(dtype).name
    sets = problem(M, C, C, 8, dtype)
    sp.SDDMM_KERNEL = "grouped"            # the cp.async kernel, main's default
    CUR["v"] = None
    reset()
    t0, (xt, dy, out) = t_wgrad(sets)
    ref = sddmm(xt, dy, out.layout).data.astype(cupy.float64)
    sp.SDDMM_KERNEL = "grouped_tma"
    reset()
    try:
        t1, (xt, dy, out) = t_wgrad(sets)
        got = sddmm(xt, dy, out.layout).data.astype(cupy.float64)
        say(f"{name} M={M}: grouped (cp.async) {t0:.4f} ms, grouped_tma {t1:.4f} ms, "
            f"diff/max {err(got, ref):.2e}, spec {dict(orig(8, sp.dtype_id(np.dtype(dtype)), M))}")
    except Exception as e:
        say(f"{name} M={M}: grouped {t0:.4f} ms, grouped_tma ERROR {type(e).__name__}: {str(e)[:200]}")
    for v in VARIANTS.get((name, M), []):
        CUR["v"] = v
        reset()
        try:
            t, (xt, dy, out) = t_wgrad(sets)
            got = sddmm(xt, dy, out.layout).data.astype(cupy.float64)
            say(f"   {v}: {t:.4f} ms  diff/max {err(got, ref):.2e}")
        except Exception as e:
            say(f"   {v}: ERROR {type(e).__name__}: {str(e)[:160]}")
    sp.SDDMM_KERNEL = None
    CUR["v"] = None
    del sets, ref
    cupy.get_default_memory_pool().free_all_blocks()
