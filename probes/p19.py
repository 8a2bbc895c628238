"""Probe 19: where a step of dsd_grouped_tma.cu goes at M = 64 (docs/perf-notes.md v20).

The grouped TMA kernel takes about 1.4 us a step at M = 64, with no unit busy (v7, v12, p16's
fit). v12 removed the block copies (wrong results, timing only) and saved 10%, so most of the
step is neither the blocks' copies nor their bytes. This probe reads the step from inside:
the kernel compiled with TIMELINE (kernels/timeline.cuh) writes %clock64 at six events of each
step of the first 64 steps of every CTA (row tile 0):
    0 producer starts waiting on `empty`     1 ... done (the buffer is free)
    2 producer has issued the step's copies  3 consumer warp 0 sees `full` (the copies landed)
    4 consumer warp 0 releases the buffer    5 the last consumer warp releases it
Over the steady steps (STAGES <= k < the item's last), each line prints the median and 90th
percentile, in ns, of:
    period     3[k] - 3[k-1]: the step time as the consumers see it
    p.wait     1 - 0: the producer waiting for a free buffer
    p.issue    2 - 1: the producer writing codes and issuing the copies
    p.loop     0[k+1] - 2[k]: the producer's table loads and shifts
    c.wait     3[k] - 4[k-1]: consumer warp 0 waiting for the copies
    c.busy     4 - 3: consumer warp 0's multiplies
    c.spread   5 - 4: the last consumer warp's release after warp 0's
    issue>full 3[k] - 2[k]: from the copies' issue to warp 0 seeing them (their latency, when
               the consumers wait)
    free>wait  1[k + STAGES] - max(4, 5)[k]: from the release to the producer's wait ending
Reading: the ring's round trip sets the pace when c.wait and p.wait are both large and
issue>full is about STAGES x period; the producer sets it when p.issue + p.loop is about the
period and p.wait is small; the consumers when c.busy + c.spread is about the period.

Cases (C = K = 16384, d = 0.1): 16-bit bs 16 and 8 x @ W and x @ W^T, random; bs 8 x @ W on
small world; float32 bs 8 x @ W; and bs 16 x @ W with WPF 2 (p18 part 5: the blocks
prefetched into L2). Each also prints the instrumented time (bench.time_cuda), which should be
the shipped kernel's within a few %.

    PYTHONPATH=. python probes/p19.py
"""
import contextlib
import os
import sys

import cupy
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd  # noqa: E402
from cupy_bsparse import _specs as sp, _gpu_ops as g, bench  # noqa: E402
from cupy_bsparse.ops import matmul  # noqa: E402

CTAS, STEPS, FIELDS = 1024, 64, 6          # timeline.cuh: TIMELINE (set here), TL_STEPS, TL_FIELDS
REC = 8 + FIELDS * STEPS
say(bench.gpu_name())
orig_spec = sp.dsd_grouped_tma_spec


@contextlib.contextmanager
def timeline_spec(extra):
    def spec(*a, **k):
        return tuple(sorted({**dict(orig_spec(*a, **k)), "TIMELINE": CTAS, **extra}.items()))
    sp.dsd_grouped_tma_spec = spec
    try:
        yield
    finally:
        sp.dsd_grouped_tma_spec = orig_spec


def record(sets, op):
    """One launch's timeline records (CTAS, REC) uint64, and the launched spec dict."""
    s = sets[0]
    a, w = (s["x"], s["w"]) if op == "fprop" else (s["dy"], s["w"].T)
    out = cupy.empty((a.shape[0], w.shape[1]), a.dtype)
    matmul(a, w, out=out)                           # compile and plan
    (call,) = s["w"].layout.plan_cache["calls"].values()
    fn = call[0]
    (spec,) = {tuple(sorted(h[4].items())) for h in g._launches.values() if h[0] is fn}
    ptr = fn.kernel.module.get_global_var("bsmm_timeline")   # the launched module's array
    if not isinstance(ptr, cupy.cuda.MemoryPointer):        # (a bare address in some CuPy)
        ptr = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(
            int(ptr[0] if isinstance(ptr, tuple) else ptr), CTAS * REC * 8, fn), 0)
    buf = cupy.ndarray((CTAS * REC,), cupy.uint64, memptr=ptr)
    buf.fill(0)
    matmul(a, w, out=out)
    cupy.cuda.Device().synchronize()
    return buf.get().reshape(CTAS, REC).astype(np.int64), dict(spec)


def analyse(rec, stages):
    done = rec[:, 4] != 0
    rec = rec[done]
    nsteps = rec[:, 4] >> 32
    span_ns = rec[:, 1] - rec[:, 0]
    span_cy = rec[:, 3] - rec[:, 2]
    ghz = float(np.median(span_cy[span_ns > 0] / span_ns[span_ns > 0]))
    ev = rec[:, 8:].reshape(len(rec), STEPS, FIELDS)
    m = {k: [] for k in ("period", "p.wait", "p.issue", "p.loop", "c.wait", "c.busy", "c.spread",
                         "issue>full", "free>wait")}
    for c in range(len(rec)):
        last = min(int(nsteps[c]), STEPS) - 1
        e = ev[c]
        for k in range(stages, last):
            m["period"].append(e[k, 3] - e[k - 1, 3])
            m["p.wait"].append(e[k, 1] - e[k, 0])
            m["p.issue"].append(e[k, 2] - e[k, 1])
            m["p.loop"].append(e[k + 1, 0] - e[k, 2])
            m["c.wait"].append(e[k, 3] - e[k - 1, 4])
            m["c.busy"].append(e[k, 4] - e[k, 3])
            m["c.spread"].append(e[k, 5] - e[k, 4])
            m["issue>full"].append(e[k, 3] - e[k, 2])
            if k + stages <= last:
                m["free>wait"].append(e[k + stages, 1] - max(e[k, 4], e[k, 5]))
    say(f"   {len(rec)} CTAs, steps mean {nsteps.mean():.1f} max {nsteps.max()}, loop span median "
        f"{np.median(span_ns) / 1e3:.1f} us max {span_ns.max() / 1e3:.1f} us, SM clock {ghz:.2f} GHz")
    for k, v in m.items():
        if v:
            v = np.asarray(v) / ghz
            say(f"   {k:11s} median {np.median(v):7.0f} ns   p90 {np.percentile(v, 90):7.0f} ns")


CASES = [("random", 16, "float16", "fprop", {}), ("random", 16, "float16", "bprop", {}),
         ("random", 8, "float16", "fprop", {}), ("random", 8, "float16", "bprop", {}),
         ("small_world", 8, "float16", "fprop", {}), ("random", 8, "float32", "fprop", {}),
         ("random", 16, "float16", "fprop", {"WPF": 2})]
problems = {}
for kind, bs, dtype, op, extra in CASES:
    key = (kind, bs, dtype)
    if key not in problems:
        problems.clear()                            # one problem on the GPU at a time
        problems[key] = problem(64, 16384, 16384, bs, dtype, kind=kind)
    sets = problems[key]
    try:
        with timeline_spec(extra):
            fresh(sets)
            rec, spec = record(sets, op)
            t, _ = t_dsd(sets, op)
        knobs = {k: spec[k] for k in ("KW", "CAP", "STAGES", "WCP", "WPF") if k in spec}
        say(f"{kind} {dtype} bs {bs} M 64 {op} {knobs}: {t:.4f} ms instrumented")
        analyse(rec, spec["STAGES"])
    except Exception as e:   # a probe: report and go on
        say(f"{kind} {dtype} bs {bs} {op} {extra}: ERROR {type(e).__name__}: {str(e)[:300]}")
fresh([])
