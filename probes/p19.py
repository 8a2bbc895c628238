"""Probe 19: where a step goes in the two TMA dsd kernels, read from inside (docs/perf-notes.md
v20).

The grouped TMA kernel takes about 1.4 us a step at M = 64, with no unit busy (v7, v12, p16's
fit). v12 removed the block copies (wrong results, timing only) and saved 10%, so most of the
step is neither the blocks' copies nor their bytes. The stream kernel's unmet rows (16-bit bs 32
and 64 at M = 64, bs 64 at M = 4096, float32 at M = 64) were put down to latency from counts
and ncu rates, never from a timeline of the steps. Each kernel compiled with TIMELINE
(kernels/timeline.cuh) writes %clock64 at six events of each of the first 64 steps of its
first CTAS CTAs in launch order:
    0 producer starts waiting on `empty`     1 ... done (the buffer is free)
    2 producer has issued the step's copies  3 consumer warp 0 sees `full` (the copies landed)
    4 consumer warp 0 releases the buffer    5 the last consumer warp releases it
(with wgmma consumers a stage is released one step late, when its batch completed: event 4
of step k comes after event 3 of step k + 1, so c.busy spans that wait too and c.wait can be
negative; period, p.*, issue>full and free>wait read as for the others).
Over the steady steps (STAGES <= k < the CTA's last), each line prints the median and 90th
percentile, in ns, of:
    period     3[k] - 3[k-1]: the step time as the consumers see it
    p.wait     1 - 0: the producer waiting for a free buffer
    p.issue    2 - 1: the producer writing codes and issuing the copies
    p.loop     0[k+1] - 2[k]: the producer's table loads and shifts (with PF 1 an entry load
               issued here is first used after the next wait, so its latency shows in p.issue)
    c.wait     3[k] - 4[k-1]: consumer warp 0 waiting for the copies
    c.busy     4 - 3: consumer warp 0's multiplies
    c.spread   5 - 4: the last consumer warp's release after warp 0's
    issue>full 3[k] - 2[k]: from the copies' issue to warp 0 seeing them (their latency, when
               the consumers wait)
    free>wait  1[k + STAGES] - max(4, 5)[k]: from the release to the producer's wait ending
Reading: the ring's round trip sets the pace when c.wait and p.wait are both large and
issue>full is about STAGES x period; the producer sets it when p.issue + p.loop is about the
period and p.wait is small; the consumers when c.busy + c.spread is about the period.

Cases (d = 0.1, random unless named; C = K = 16384 at M = 64, 8192 at M = 4096):
dsd_grouped_tma.cu at M = 64: 16-bit bs 16 and 8 x @ W and x @ W^T; bs 8 x @ W on small world;
float32 bs 8; bs 16 and 8 with PF 3 (the producer's tables three steps ahead: ncu's
long-scoreboard stalls lead in this kernel, v16, and only the producer loads from global
memory in its loop). dsd_stream.cu:
16-bit bs 32 and 64 (wgmma) at M = 64, bs 64 at M = 4096; float32 bs 16 and 64 at M = 64.
Each line also gives the default kernel's time, the extra's without the instrumentation (if
any) and the instrumented one's (bench.time_cuda), with the resident CTAs of each, so a build
that lost occupancy shows.

    PYTHONPATH=. python probes/p19.py [producer|persist|f32w|groups|tall|tallpersist|
                                       queue64|wgq|swq|nonsquare|late|baf32]
                                       (PRODUCER, ..., TALL_PERSIST, TALL_TILES, NONSQUARE below)
"""
import os
import sys

import cupy
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import problem, say, fresh, t_dsd, patched, with_knobs  # noqa: E402
from cupy_bsparse import _specs as sp, _gpu_ops as g, bench  # noqa: E402
from cupy_bsparse.ops import matmul  # noqa: E402

CTAS, STEPS, FIELDS = 1024, 64, 6          # timeline.cuh: TIMELINE (set here), TL_STEPS, TL_FIELDS
REC = 8 + FIELDS * STEPS
say(bench.gpu_name())
SPEC_FN = {"grouped_tma": "dsd_grouped_tma_spec", "stream": "dsd_stream_spec"}


def knobs_on(kernel, extra, timeline=True):
    """The kernel's spec function patched (a context) to add ``extra`` and, with ``timeline``,
    TIMELINE = CTAS."""
    name = SPEC_FN[kernel]
    extra = {**extra, "TIMELINE": CTAS} if timeline else extra
    return patched(sp, **{name: with_knobs(getattr(sp, name), extra)})


def launched(sets):
    """(function, spec dict, resident CTAs) of the one call planned on the sets' layout."""
    (call,) = sets[0]["w"].layout.plan_cache["calls"].values()
    fn = call[0]
    (hit,) = {(tuple(sorted(h[4].items())), h[5]) for h in g._launches.values() if h[0] is fn}
    return fn, dict(hit[0]), hit[1]


def operands(s, op):
    a, w = (s["x"], s["w"]) if op == "fprop" else (s["dy"], s["w"].T)
    return a, w, cupy.empty((a.shape[0], w.shape[1]), a.dtype)


def record(sets, op):
    """One launch's timeline records (CTAS, REC) int64. The compile-and-plan call runs on
    another input set (the sets share W's layout), so the recorded launch finds its own W and
    x no more in L2 than the bench's rotation does."""
    a, w, out = operands(sets[1 % len(sets)], op)
    matmul(a, w, out=out)
    fn = launched(sets)[0]
    ptr = fn.kernel.module.get_global_var("bsmm_timeline")   # the launched module's array
    if not isinstance(ptr, cupy.cuda.MemoryPointer):        # an address (CuPy 14: an int)
        ptr = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(
            int(ptr[0] if isinstance(ptr, tuple) else ptr), CTAS * REC * 8, fn), 0)
    buf = cupy.ndarray((CTAS * REC,), cupy.uint64, memptr=ptr)
    buf.fill(0)
    a, w, out = operands(sets[0], op)
    matmul(a, w, out=out)
    cupy.cuda.Device().synchronize()
    return buf.get().reshape(CTAS, REC).astype(np.int64)


def analyse(rec, stages):
    done = rec[:, 4] != 0
    rec = rec[done]
    nsteps = rec[:, 4] >> 32
    span_ns = rec[:, 1] - rec[:, 0]
    span_cy = rec[:, 3] - rec[:, 2]
    ghz = float(span_cy.sum() / max(1, span_ns.sum()))   # %globaltimer may tick coarsely
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
    # v37: where the CTAs' ends spread from: their starts, their step counts, or their speed
    # (each CTA's loop span over its steps); times from the first CTA's start
    t0 = rec[:, 0].min()
    per = span_ns / np.maximum(nsteps, 1)
    say(f"   starts {np.median(rec[:, 0] - t0) / 1e3:.1f} us median, {(rec[:, 0] - t0).max() / 1e3:.1f} "
        f"max; ends p10 {np.percentile(rec[:, 1] - t0, 10) / 1e3:.1f} median "
        f"{np.median(rec[:, 1] - t0) / 1e3:.1f} max {(rec[:, 1] - t0).max() / 1e3:.1f} us; ns a step "
        f"a CTA p10 {np.percentile(per, 10):.0f} median {np.median(per):.0f} p90 "
        f"{np.percentile(per, 90):.0f}; corr(span, steps) {np.corrcoef(span_ns, nsteps)[0, 1]:.2f}")
    for k, v in m.items():
        if v:
            v = np.asarray(v) / ghz
            say(f"   {k:11s} median {np.median(v):7.0f} ns   p90 {np.percentile(v, 90):7.0f} ns   "
                f"mean {v.mean():7.0f} ns")
    # v40: the long periods (over 1.5x the median): on the item queue mostly an item's first step,
    # which carries the last item's epilogue (y's stores) and the switch
    per = np.asarray(m["period"]) / ghz
    if per.size:
        long_ = per > 1.5 * np.median(per)
        say(f"   long periods (> 1.5x median): {long_.mean() * 100:.1f}% of steps, mean "
            f"{per[long_].mean() if long_.any() else 0:.0f} ns, p95 {np.percentile(per, 95):.0f} ns, "
            f"excess over the median {((per[long_] - np.median(per)).sum() / per.size):.0f} ns a step")


CASES = [("grouped_tma", "random", 16, "float16", "fprop", 64, {}),
         ("grouped_tma", "random", 16, "float16", "bprop", 64, {}),
         ("grouped_tma", "random", 8, "float16", "fprop", 64, {}),
         ("grouped_tma", "random", 8, "float16", "bprop", 64, {}),
         ("grouped_tma", "small_world", 8, "float16", "fprop", 64, {}),
         ("grouped_tma", "random", 8, "float32", "fprop", 64, {}),
         ("grouped_tma", "random", 16, "float16", "fprop", 64, {"PF": 3}),
         ("grouped_tma", "random", 8, "float16", "fprop", 64, {"PF": 3}),
         ("stream", "random", 32, "float16", "fprop", 64, {}),
         ("stream", "random", 64, "float16", "fprop", 64, {}),
         ("stream", "random", 16, "float32", "fprop", 64, {}),
         ("stream", "random", 64, "float32", "fprop", 64, {}),
         ("stream", "random", 64, "float16", "fprop", 4096, {})]
#: v21 (`p19.py producer`): v20's timelines put the grouped kernel's 16-bit step on its producer
#: (p.issue + p.loop about the period, p.wait about nothing), whose block copies the SASS issues
#: one lane at a time (ELECT, R2UR, UBLKCP per trip). cp.async copies (WCP 1: at bs 16 a block
#: is one warp-wide 16-byte copy) take the TMA unit off the blocks; STAGES 2 puts more CTAs on an
#: SM (residency printed), which tells the SM's TMA unit from the producer warp; PW 2 splits
#: each step's block copies over two producer warps (the first also the x boxes and codes).
PRODUCER = [("grouped_tma", "random", 16, "float16", "fprop", 64, {"WCP": 1}),
            ("grouped_tma", "random", 16, "float16", "bprop", 64, {"WCP": 1}),
            ("grouped_tma", "random", 16, "float16", "fprop", 64, {"STAGES": 2, "MIN_CTAS": 3}),
            ("grouped_tma", "random", 8, "float16", "fprop", 64, {"WCP": 1}),
            ("grouped_tma", "random", 8, "float16", "fprop", 64, {"STAGES": 2, "MIN_CTAS": 3}),
            ("grouped_tma", "random", 16, "float16", "fprop", 64, {"PW": 2}),
            ("grouped_tma", "random", 16, "float16", "bprop", 64, {"PW": 2}),
            ("grouped_tma", "random", 8, "float16", "fprop", 64, {"PW": 2}),
            ("grouped_tma", "random", 8, "float16", "bprop", 64, {"PW": 2}),
            ("grouped_tma", "random", 16, "float16", "fprop", 64, {"PW": 2, "WCP": 1})]
#: (`cluster`, v22: the timelines of CL, dsd_grouped_tma.cu's slabs multicast in clusters, 1.5x
#: slower; removed with CL.)
#: v23 (`p19.py persist`): dsd_stream.cu's PERSIST (one wave of CTAs over an equal cut of the
#: entries) measured 1.1-1.2x slower at 16-bit bs 32 / 64, M = 64, and 1.19x faster at float32
#: bs 64 (p21). The timelines with and without it: whether the split-K epilogues between a
#: CTA's chunks (they show in c.wait's p90: the first step of a chunk waits out the previous
#: chunk's epilogue) cost more than the balance gains (loop span max against median).
#: float32's default is PERSIST, so its extra turns it off.
PERSIST = [("stream", "random", 64, "float16", "fprop", 64, {"PERSIST": 1}),
           ("stream", "random", 32, "float16", "fprop", 64, {"PERSIST": 1}),
           ("stream", "random", 64, "float32", "fprop", 64, {"PERSIST": 0}),
           ("stream", "random", 16, "float32", "fprop", 64, {"PERSIST": 0})]
#: v24 (`p19.py f32w`): dsd_stream.cu's float32 wgmma consumers took bs 32 at M = 64 from 0.0944
#: to 0.0855 / 0.0754 ms (x @ W / x @ W^T, PERSIST) where about 45 / 31 us of issue were counted
#: (perf-notes v24), and lost at bs 16. Which phase of a step waits: the consumers' stamps are
#: 3 (full), 4 / 5 (the buffer released, before the batch is issued), so c.busy is the W split,
#: the previous batch's wait and fold and the A loads; p.wait shows whether the copies wait for
#: them. bs 32 on chunks too (1.2x slower than PERSIST on wgmma), and bs 16 forced to wgmma.
F32W = [("stream", "random", 32, "float32", "fprop", 64, {"PERSIST": 0}),
        ("stream", "random", 32, "float32", "bprop", 64, {}),
        ("stream", "random", 16, "float32", "fprop", 64,
         {"WGMMA": 1, "WARPS_M": 4, "WARPS_N": 1, "STAGES": 6, "PERSIST": 1})]
#: v27 (`p19.py groups`): dsd_stream.cu with R = 4 block-columns a CTA (one CTA an SM, 8
#: consumer warps) moved 12% fewer bytes than R = 1 at 16-bit bs 32, M = 4096, and took 0.306
#: against 0.287 ms (p26): which side of its step waits.
GROUPS = [("stream", "random", 32, "float16", "fprop", 4096, {}),
          ("stream", "random", 32, "float16", "fprop", 4096,
           {"R": 4, "BM": 256, "WARPS_M": 8, "WARPS_N": 1, "STAGES": 6})]
#: (GROUPS' third case, R 4 with PERSIST, went with that kernel path: v30, slower than R 1.)
#: v32 (`p19.py tall`): the 16-bit bs 32 x @ W at M = 4096 on 512-row tiles (TALL 1, the default
#: since v29: two CTAs an SM, 94 registers, 105 KB) has never had a timeline; the random row is
#: 2% short of E 0.22 with x's bytes at 6.4 TB/s, where v31's wgrad moves 7.2 TB/s: is a step
#: its consumers' or its copies' latency?
TALL = [("stream", "random", 32, "float16", "fprop", 4096, {}),
        ("stream", "random", 32, "float16", "bprop", 4096, {}),
        ("stream", "barabasi_albert", 32, "float16", "fprop", 4096, {})]
#: v32 (`p19.py tallpersist`): v31's timeline above put a CTA's loop at 1.32 us a step against a
#: steady 0.88 (each of the 2048 CTAs fills its ring once, issue>full 2.1 us); PERSIST (one wave,
#: the ring running on across a CTA's chunks) pays the fill once a CTA, but runs all 8 row tiles
#: at once (x's 64 MB, not one row tile's 8 MB, hot in L2).
TALL_PERSIST = [("stream", "random", 32, "float16", "fprop", 4096, {"PERSIST": 1})]
#: (`talltiles`, v32-v33: PERSIST over G row tiles a launch, STREAM_PERSIST_TILES, went with
#: that knob in v33; since v33 `tall` times the default there, the item queue's 512-row set.)
#: v35 (`p19.py queue64`): p34 timed dsd_stream.cu's item queue at M = 64 slower than the
#: chunks, and slower at one CTA an SM with 12 stages than at two with 6: a CTA's steps come no
#: faster with a deeper ring. (Measured, H100: the queue's copies take 6.0 us from issue to
#: use against the chunks' 2.2 us, the ring full and the consumers waiting. Loading the
#: producer's entries 16 steps ahead, a knob tried and removed, changed nothing.)
Q22 = {"WGMMA": 0, "WARPS_M": 2, "WARPS_N": 2, "QUEUE": 1, "STAGES": 12}
QUEUE64 = [("stream", "random", 64, "float16", "fprop", 64, {}),
           ("stream", "random", 64, "float16", "fprop", 64, Q22),
           ("stream", "random", 32, "float16", "fprop", 64, {})]
#: v35 (`p19.py wgq`): 16-bit bs 64 at M = 4096 on v35's default (wgmma consumers on the
#: queue, 512-row tiles, 3 stages of 72 KB, WG_EAGER) ran at 139 us with ncu's L2 at 61% and
#: the tensor pipe at 48%: which side of a step waits; and with the stage held one step (no
#: WG_EAGER).
WGQ = [("stream", "random", 64, "float16", "fprop", 4096, {}),
       ("stream", "random", 64, "float16", "fprop", 4096, {"WG_EAGER": 0})]
#: v40 (`p19.py nonsquare`): 16-bit bs 64 at M = 4095, C 8192, K 4096 (W (C, K)): x @ W 0.0734
#: ms against x @ W^T 0.0700, where the queue's model puts x @ W 2-3 us faster (its 512 items of
#: 12.8 steps against 1024 of 6.4; docs/perf-notes.md v40): whose steps are slower, or whose
#: CTAs end apart. The 8th field is (C, K).
NONSQUARE = [("stream", "random", 64, "float16", op, 4095, {}, (8192, 4096))
             for op in ("fprop", "bprop")]
#: v41 (`p19.py late`): the same with the next item claimed near the item's end (LATE 1 / 2):
#: whether the CTAs' step counts close up to the greedy queue's (v41 model: 43-52 against 41-58).
LATE = [("stream", "random", 64, "float16", op, 4095, {"LATE": k}, (8192, 4096))
        for k in (1, 2) for op in ("fprop", "bprop")]
#: v45 (`p19.py swq`): small world's 1536 blocks at bs 64 take as long as random's 1638
#: (0.1304 / 0.1287 ms x @ W): its CTAs' step times and ends against random's.
SWQ = [("stream", kind, 64, "float16", "fprop", 4096, {}) for kind in ("small_world", "random")]
#: v57 (`p19.py baf32`): float32 bs 8 x @ W at M = 4096 runs 12-13% slower a unit of work on
#: Barabasi-Albert (and on it with rows and columns shuffled, "barabasi_albert_perm") than the
#: CTA-order model that fits random and random's split plan within 0.5% (perf-notes v57): the
#: steps' times and the CTAs' spans, with the raw records kept for reading against the plan.
BAF32 = [("grouped_tma", kind, 8, "float32", "fprop", 4096, {})
         for kind in ("random", "barabasi_albert", "barabasi_albert_perm")]
if sys.argv[1:] == ["baf32"]:
    CASES = BAF32
elif sys.argv[1:] == ["swq"]:
    CASES = SWQ
elif sys.argv[1:] == ["nonsquare"]:
    CASES = NONSQUARE
elif sys.argv[1:] == ["late"]:
    CASES = LATE
elif sys.argv[1:] == ["queue64"]:
    CASES = QUEUE64
elif sys.argv[1:] == ["wgq"]:
    CASES = WGQ
elif sys.argv[1:] == ["producer"]:
    CASES = PRODUCER
elif sys.argv[1:] == ["persist"]:
    CASES = PERSIST
elif sys.argv[1:] == ["f32w"]:
    CASES = F32W
elif sys.argv[1:] == ["groups"]:
    CASES = GROUPS
elif sys.argv[1:] == ["tall"]:
    CASES = TALL
elif sys.argv[1:] == ["tallpersist"]:
    CASES = TALL_PERSIST
problems = {}
for case in CASES:
    kernel, kind, bs, dtype, op, M, extra = case[:7]
    n = 16384 if M <= 64 else 8192
    C, K = case[7] if len(case) > 7 else (n, n)
    key = (kind, bs, dtype, M, C, K)
    if key not in problems:
        problems.clear()                            # one problem on the GPU at a time
        perm = kind.endswith("_perm")
        problems[key] = problem(M, C, K, bs, dtype, kind=kind[:-5] if perm else kind,
                                permute=5 if perm else None)
    sets = problems[key]
    label = (f"{kernel} {kind} {dtype} bs {bs} M {M}" + (f" C {C} K {K}" if C != K else "")
             + f" {op}" + (f" {extra}" if extra else ""))
    try:
        times = []
        for ex, tl in ((({}, False),) + (((extra, False),) if extra else ()) + ((extra, True),)):
            with knobs_on(kernel, ex, tl):
                fresh(sets)
                if tl:
                    rec = record(sets, op)
                t, _ = t_dsd(sets, op)
                _, spec, res = launched(sets)
            times.append(f"{t:.4f} ms ({res} CTAs)")
        knobs = {k: spec[k] for k in ("BM", "KW", "CAP", "STAGES", "PF", "WCP", "PW", "WGMMA", "R",
                                      "PERSIST")
                 if k in spec}
        say(f"{label} {knobs}: " + " / ".join(times) + ": default" + (" / with the extra" if extra else "")
            + " / instrumented")
        analyse(rec, spec["STAGES"])
        if os.environ.get("OUT"):                   # v38: the raw records, for offline reading
            np.save(os.path.join(os.environ["OUT"], "p19_" + "_".join(
                str(v) for v in (kind, dtype, bs, M, op, "".join(f"{k}{v}" for k, v in extra.items())
                               or 0)) + ".npy"), rec)
    except Exception as e:   # a probe: report and go on
        say(f"{label}: ERROR {type(e).__name__}: {str(e)[:300]}")
fresh([])
