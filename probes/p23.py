"""Probe 23: sddmm_tall.cu's float32 consumers on wgmma (3xTF32 on wgmma m64n64k8 .tf32, x^T's
fragments from registers, dy's blocks split into K-major planes; WGMMA 1, docs/perf-notes.md v25)
against the mma.sync consumers: float32 bs 64 wgrad at M = 4096 (C = K = 8192) and M = 1024,
with fprop beside for the ratio.

v24's status: float32 bs 64 wgrad at M = 4096 1.46 ms, 1.33x fprop, E 0.71 (target 0.85 and
1.25x): 3xTF32 on mma.sync, issue-bound.

    PYTHONPATH=. python probes/p23.py          (random and Barabasi-Albert layouts)

Each line: ms of fprop, wgrad on mma.sync, wgrad on wgmma (STAGES 4, the spec; then 6), with
each wgrad's relative error against float64 (norm-wise over the stored blocks, first set).
"""
import os
import sys

import cupy

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, t_wgrad, patched, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, bench  # noqa: E402
from cupy_bsparse.ops import sddmm  # noqa: E402

say(bench.gpu_name())


def rel64(s, out):
    ref = s["x"].T.astype(cupy.float64) @ s["dy"].astype(cupy.float64)
    mask = cupy.kron(cupy.asarray(out.layout.toarray()), cupy.ones((64, 64), bool))
    ref = cupy.where(mask, ref, 0.0)
    got = out.toarray().astype(cupy.float64)
    return float(cupy.linalg.norm(got - ref) / cupy.linalg.norm(ref))


def chunks():
    """wgmma wgrad at M = 4096 in launches of n rows (SDDMM_M_CHUNK), STAGES 4 and 6."""
    orig = sp.sddmm_tall_spec
    for L in ("random", "barabasi_albert"):
        sets = problem(4096, 8192, 8192, 64, "float32", kind=L)
        line = []
        for n in (None, 256, 512, 1024, 2048):
            for st in (4, 6):
                fresh(sets)
                with patched(sp, USE_WGMMA=True, SDDMM_M_CHUNK=n,
                             sddmm_tall_spec=with_knobs(orig, {"STAGES": st})):
                    t, _ = t_wgrad(sets)
                line.append(f"{n or 'one'}/{st} {t:.4f}")
        say(f"M 4096 {L} float32 bs 64 wgrad on wgmma, rows a launch / stages: " + ", ".join(line))
        del sets
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()


CTAS, STEPS, FIELDS = 512, 64, 6           # timeline.cuh: TIMELINE (set here), TL_STEPS, TL_FIELDS
REC = 8 + FIELDS * STEPS


def timeline():
    """Per-step stamps of the wgmma consumers (TIMELINE, the first CTAS CTAs): 0 / 1 the
    producer's acquire begun / done, 2 its copies issued; 3 consumer thread 0 sees full, 4 the
    previous batch waited for and folded, 5 dy's split and the A loads done; then the barrier,
    the batch's issue and the next wait on full up to the next 3."""
    import numpy as np
    from cupy_bsparse import _gpu_ops as g
    orig = sp.sddmm_tall_spec
    for L in ("random",):
        sets = problem(4096, 8192, 8192, 64, "float32", kind=L)
        for knobs in ({},):
            fresh(sets)
            with patched(sp, USE_WGMMA=True,
                         sddmm_tall_spec=with_knobs(orig, {**knobs, "TIMELINE": CTAS})):
                s1 = sets[1 % len(sets)]
                sddmm(s1["x"].T, s1["dy"], s1["w"].layout)
                (fn,) = [h[0] for k, h in g._launches.items() if k[0] == "sddmm" and k[1] == "tall"]
                ptr = fn.kernel.module.get_global_var("bsmm_timeline")
                if not isinstance(ptr, cupy.cuda.MemoryPointer):
                    ptr = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(
                        int(ptr[0] if isinstance(ptr, tuple) else ptr), CTAS * REC * 8, fn), 0)
                buf = cupy.ndarray((CTAS * REC,), cupy.uint64, memptr=ptr)
                buf.fill(0)
                s0 = sets[0]
                sddmm(s0["x"].T, s0["dy"], s0["w"].layout)
                cupy.cuda.Device().synchronize()
                rec = buf.get().reshape(CTAS, REC).astype(np.int64)
                t, _ = t_wgrad(sets)
            rec = rec[rec[:, 4] != 0]
            span_ns, span_cy = rec[:, 1] - rec[:, 0], rec[:, 3] - rec[:, 2]
            ghz = float(span_cy.sum() / max(1, span_ns.sum()))
            ev = rec[:, 8:].reshape(len(rec), STEPS, FIELDS)
            st = knobs.get("STAGES", 4)
            m = {k: [] for k in ("period", "fold", "split+A", "bar+issue+full", "p.wait", "issue>full")}
            for e in ev:
                for k in range(st, STEPS - 1):
                    m["period"].append(e[k, 3] - e[k - 1, 3])
                    m["fold"].append(e[k, 4] - e[k, 3])
                    m["split+A"].append(e[k, 5] - e[k, 4])
                    m["bar+issue+full"].append(e[k + 1, 3] - e[k, 5])
                    m["p.wait"].append(e[k, 1] - e[k, 0])
                    m["issue>full"].append(e[k, 3] - e[k, 2])
            say(f"M 4096 {L} bs 64 wgrad wgmma {knobs}: {t:.4f} ms instrumented; {len(rec)} CTAs, "
                f"loop span median {np.median(span_ns) / 1e3:.1f} us, SM clock {ghz:.2f} GHz")
            for k, v in m.items():
                v = np.asarray(v) / ghz
                say(f"   {k:15s} median {np.median(v):7.0f} ns   p10 {np.percentile(v, 10):7.0f}   "
                    f"p90 {np.percentile(v, 90):7.0f} ns")
        del sets
        fresh([])


#: (name, USE_WGMMA, #defines added to the spec). v25's first build (the split overlapping the
#: batch in two plane sets, 200 registers) measured 1.317 ms (STAGES 6 1.296) against mma.sync's
#: 1.481 at M = 4096; its timeline showed one CTA an SM (cuda_occupancy.h allots registers per
#: SM sub-partition: two warps of 200 each) and a consumer chain of 890 ns a step. The shipped
#: build waits for the batch first (one plane set) and caps registers at 168: two CTAs an SM,
#: 1.116 ms.
VARIANTS = [("mma.sync", False, {}), ("wgmma", True, {}), ("wgmma STAGES 6", True, {"STAGES": 6})]


def main():
    orig = sp.sddmm_tall_spec
    for L in ("random", "barabasi_albert"):
        for M in (4096, 1024):
            sets = problem(M, 8192, 8192, 64, "float32", kind=L)
            assert sp.sddmm_kernel(64, 0, M) == "tall"
            fresh(sets)
            tf, _ = t_dsd(sets, "fprop")
            line = [f"fprop {tf:.4f}"]
            for name, wg, knobs in VARIANTS:
                fresh(sets)
                fn = with_knobs(orig, knobs) if knobs else orig
                with patched(sp, USE_WGMMA=wg, sddmm_tall_spec=fn):
                    t, (xt, dy, out) = t_wgrad(sets)
                    sddmm(xt, dy, out.layout, out=out)
                e = rel64(sets[0], out) if M == 4096 or L == "random" else float("nan")
                line.append(f"{name} {t:.4f} ({t / tf:.2f}x, err {e:.1e})")
            say(f"M {M} {L} float32 bs 64: " + "; ".join(line))
            del sets
            fresh([])
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    {"chunks": chunks, "timeline": timeline}.get((sys.argv[1:] or [""])[0], main)()
