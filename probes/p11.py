"""Probe 11: sddmm_stream.cu with wgmma consumers for
16-bit bs 64 (M <= 64), patched into the template text at run time. Correctness against the
mma.sync kernel and float64, then timing at M = 64 / 33 / 16."""
import os, sys
import cupy, numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, t_wgrad  # noqa: E402
from cupy_bsparse import _gpu_ops as g, _specs as sp, bench, compiler
from cupy_bsparse._arrays import BFLOAT16
from cupy_bsparse.ops import sddmm


orig_t = compiler._template
if "WGMMA" in orig_t("sddmm_stream.cu"):
    sys.exit("p11: kernels/sddmm_stream.cu has had WGMMA since v17; this patch no longer applies")


def _patched(name):
    text = orig_t(name)
    if name != "sddmm_stream.cu":
        return text
    a = "#define T_BYTES"
    text = text.replace(a, "#ifndef WGMMA\n#define WGMMA 0\n#endif\n#if WGMMA\n" + orig_t("wgmma.cuh")
                        + "\n#endif\n" + a, 1)
    old = "#else\n        mma_tn_swizzled<MI, NI, BK>(acc, x0, wm * WM, d0 + ring.s * T_BYTES, wn * WN, lane);\n#endif"
    assert old in text
    new = """#elif WGMMA
        {
            static_assert(BS == 64 && WARPS_M == 4 && WARPS_N == 1, "wgmma: one warpgroup, bs 64");
            wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
            wgmma_fence();
#pragma unroll
            for (int k = 0; k < BK; k += 16)
                wgmma_m64k16<BS, 1, 1>(&acc[0][0][0], wgmma_desc(x0 + k * RB),
                                       wgmma_desc(d0 + ring.s * T_BYTES + k * RB));
            wgmma_commit();
            wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
            wgmma_wait<0>();
            wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
        }
#else
        mma_tn_swizzled<MI, NI, BK>(acc, x0, wm * WM, d0 + ring.s * T_BYTES, wn * WN, lane);
#endif"""
    return text.replace(old, new)


_patched.cache_clear = orig_t.cache_clear
compiler._template = _patched
orig_spec = sp.sddmm_stream_spec
CUR = {"on": False}


def spec(bs, did, M):
    p = dict(orig_spec(bs, did, M))
    if CUR["on"] and did in (1, 2) and bs == 64:
        p.update(WARPS_M=4, WARPS_N=1, WGMMA=1)
    return tuple(sorted(p.items()))


sp.sddmm_stream_spec = spec
if __name__ == "__main__":
    say(bench.gpu_name())
    bad = 0
    sp.SDDMM_KERNEL = "stream"          # the small test layouts would take another kernel
    for dt in (np.float16, BFLOAT16):
        for M in (64, 33, 16, 5):
            rng = np.random.default_rng(M)
            C, K = 64 * 40, 64 * 24
            mask = rng.random((C // 64, K // 64)) < 0.3
            mask[1, :] = False; mask[:, 2] = False
            x = cupy.asarray(rng.standard_normal((M, C)).astype(dt))
            dy = cupy.asarray(rng.standard_normal((M, K)).astype(dt))
            from cupy_bsparse.block_layout import BlockLayout
            lay = BlockLayout.from_mask(mask, 64)
            outs = {}
            for on in (False, True):
                CUR["on"] = on
                g._launches.clear()
                r = [sddmm(x.T, dy, lay).data.get() for _ in range(2)]
                outs[on] = r
            ref = (x.get().astype(np.float64).T @ dy.get().astype(np.float64))
            rows, cols = np.nonzero(mask)
            refb = np.stack([ref[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] for r, c in zip(rows, cols)])
            def rel(a):
                return np.linalg.norm(a.astype(np.float64) - refb) / np.linalg.norm(refb)
            e0, e1 = rel(outs[False][0]), rel(outs[True][0])
            same = np.array_equal(outs[True][0].view(np.uint16), outs[True][1].view(np.uint16))
            eq = np.array_equal(outs[True][0].view(np.uint16), outs[False][0].view(np.uint16))
            ok = same and not np.isnan(outs[True][0].astype(np.float32)).any() and e1 <= 2 * e0 + 1e-6
            bad += not ok
            say(f"{np.dtype(dt).name} M {M}: rel {e1:.2e} (mma.sync {e0:.2e}) repeat {same} equal {eq} {'OK' if ok else 'BAD'}")
    say(f"correctness: {bad} bad")
    sp.SDDMM_KERNEL = None
    if bad:
        sys.exit(1)
    for dt in (np.float16, BFLOAT16):
        for M in (64, 33, 16):
            sets = problem(M, 16384, 16384, 64, dt)
            for on in (False, True):
                CUR["on"] = on
                g._launches.clear()
                ts = [t_wgrad(sets)[0] for _ in range(3)]
                say(f"{np.dtype(dt).name} bs 64 M {M} wgrad {'wgmma' if on else 'mma.sync'}: {min(ts):.4f} ms")
            del sets
            cupy.get_default_memory_pool().free_all_blocks()
