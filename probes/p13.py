"""Probe 13: float32 bs 8 (3xTF32) on
dsd_grouped_tma.cu against dsd_grouped.cu (cp.async, main's default), x @ W and x @ W^T at
M = 64 (C = K = 16384) and M = 4096 (C = K = 8192), d = 0.1 random; the TMA kernel's outputs
against the cp.async kernel's (same 3xTF32 arithmetic) and, at M = 64, against float64; then
spec variants (KW, CAP, STAGES, WCP, BM / warps)."""
import os, sys
import cupy, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, clear, t_dsd, err  # noqa: E402
from cupy_bsparse import _specs as sp, bench

say(bench.gpu_name())
orig = sp.dsd_grouped_tma_spec
CUR = {"v": None}


def spec(bs, did, M, trans_w):
    p = dict(orig(bs, did, M, trans_w))
    if CUR["v"] and did == 0:
        p.update(CUR["v"])
        if p.get("WCP") == 0:
            del p["WCP"]
    return tuple(sorted(p.items()))


sp.dsd_grouped_tma_spec = spec
VARIANTS = {
    64: [dict(STAGES=2), dict(STAGES=4), dict(KW=128, STAGES=2), dict(CAP=32), dict(CAP=128, STAGES=2),
         dict(WCP=0), dict(WCP=1), dict(W_HINT=1), dict(WARPS_M=2, WARPS_N=4)],
    4096: [dict(STAGES=3, KW=64), dict(KW=256, STAGES=2, CAP=32), dict(CAP=32), dict(WCP=0), dict(WCP=1),
           dict(WARPS_M=2, WARPS_N=4), dict(BM=128, WARPS_M=2, WARPS_N=4, KW=64, STAGES=2, MIN_CTAS=1)],
}
for M, C in ((64, 16384), (4096, 8192)):
    sets = problem(M, C, C, 8, np.float32)
    for op in ("fprop", "bprop"):
        sp.DSD_KERNEL = "grouped"
        clear(sets)
        t0, ref = t_dsd(sets, op)
        sp.DSD_KERNEL = "grouped_tma"      # float32 bs 8 takes it only when forced, until measured
        CUR["v"] = None
        clear(sets)
        kind = sp.dsd_kernel(8, 0, M)
        t1, got = t_dsd(sets, op)
        line = f"M={M} {op}: grouped (cp.async) {t0:.4f} ms, {kind} {t1:.4f} ms, diff/max {err(got, ref):.2e}"
        if M == 64:
            s = sets[0]
            a, w = (s["x"], s["w"]) if op == "fprop" else (s["dy"], s["w"].T)
            r64 = a.astype(cupy.float64) @ cupy.asarray(w.toarray() if hasattr(w, "toarray") else w, dtype=cupy.float64)
            line += f", tma vs f64 {err(got.astype(cupy.float64), r64):.2e}, cp.async vs f64 {err(ref.astype(cupy.float64), r64):.2e}"
        say(line)
        for v in VARIANTS[M]:
            CUR["v"] = v
            clear(sets)
            try:
                t, got = t_dsd(sets, op)
                say(f"   {v}: {t:.4f} ms  diff/max {err(got, ref):.2e}")
            except Exception as e:
                say(f"   {v}: ERROR {type(e).__name__}: {str(e)[:160]}")
        CUR["v"] = None
        sp.DSD_KERNEL = None
    del sets
    cupy.get_default_memory_pool().free_all_blocks()
