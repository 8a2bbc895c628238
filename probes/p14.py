"""Probe 14: float32 wgrad on sddmm_tall.cu with
KSUM 16 / 32 (the products of 2 / 4 8-deep steps in one fresh tile) against KSUM 8 (shipped),
bs 16 and 32 at M = 4096 (C = K = 8192) and bs 16 at M = 64 (C = K = 16384), d = 0.1 random.
Outputs against KSUM 8's and, at the first case, against float64."""
import os, sys
import cupy, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, t_wgrad, reset, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench
from cupy_bsparse.ops import sddmm

say(bench.gpu_name())
orig = sp.sddmm_tall_spec
CUR = {"ksum": 8}


def spec(bs, did, M=None):
    p = dict(orig(bs, did, M))
    if CUR["ksum"] != 8 and p["DTYPE_ID"] == sp._F32X3:
        p["KSUM"] = CUR["ksum"]
    return tuple(sorted(p.items()))


sp.sddmm_tall_spec = spec
first = True
for bs, M, C in ((32, 4096, 8192), (16, 4096, 8192), (16, 64, 16384)):
    sets = problem(M, C, C, bs, np.float32)
    assert sp.sddmm_kernel(bs, 0, M) == "tall"
    res = {}
    for ks in (8, 16, 32):
        CUR["ksum"] = ks
        reset()
        try:
            t, (xt, dy, out) = t_wgrad(sets)
            got = sddmm(xt, dy, out.layout).data.astype(cupy.float64)
            res[ks] = got
            line = f"bs {bs} M={M} KSUM {ks}: {t:.4f} ms"
            if ks != 8:
                line += f"  diff/max vs KSUM 8 {err(got, res[8]):.2e}"
            if first:
                rows = cupy.asnumpy(out.layout.row_ids)[:64].tolist()
                cols = cupy.asnumpy(out.layout.indices)[:64].tolist()
                ref = cupy.stack([xt[r * bs:(r + 1) * bs].astype(cupy.float64)
                                  @ dy[:, c * bs:(c + 1) * bs].astype(cupy.float64)
                                  for r, c in zip(rows, cols)])
                line += f"  vs f64 (64 blocks) {err(got[:64], ref):.2e}"
            say(line)
        except Exception as e:
            say(f"bs {bs} M={M} KSUM {ks}: ERROR {type(e).__name__}: {str(e)[:160]}")
    first = False
    CUR["ksum"] = 8
    del sets, res
    cupy.get_default_memory_pool().free_all_blocks()
