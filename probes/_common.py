"""Helpers shared by the probes: a logging print, a bench-like problem, timed products, errors
and patched specialisations. Needs a CUDA GPU. Logs go to $OUT/<probe>[_<args>].log as well as
stdout."""
import contextlib
import os
import sys

import cupy
import numpy as np

from cupy_bsparse import _gpu_ops as g, bench
from cupy_bsparse.block_layout import BlockLayout
from cupy_bsparse.matrix import random
from cupy_bsparse.ops import matmul, sddmm

_name = "_".join([os.path.splitext(os.path.basename(sys.argv[0] or "probe"))[0]]
                 + [a for a in sys.argv[1:] if a.isidentifier()])   # p18 items -> p18_items
_log = open(os.path.join(os.environ.get("OUT", "."), _name + ".log"), "w")


def say(*a):
    """Print and log one line."""
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    _log.write(s + "\n")
    _log.flush()


def problem(M, C, K, bs, dtype, kind="random", seed=0, density=0.1, permute=None):
    """Input sets as the bench makes them: W (C, K) at ``density`` of layout ``kind``, x (M, C),
    dy (M, K); as many copies as rotate through L2. ``permute`` (a seed): W's block-rows and
    block-columns shuffled, which keeps every row's and column's block count."""
    mask = bench.make_mask(kind, C // bs, K // bs, density, seed=seed)
    if permute is not None:
        rng = np.random.default_rng(permute)
        mask = mask[rng.permutation(mask.shape[0])][:, rng.permutation(mask.shape[1])]
    layout = BlockLayout.from_mask(mask, bs)
    w = random((C, K), bs, layout=layout, dtype=dtype, seed=seed + 1, device="gpu")
    n = bench.rotation_sets(bench.moved_bytes(M, C, K, w.nnz, np.dtype(dtype).itemsize),
                            cupy.cuda.Device().attributes["L2CacheSize"])
    rng = cupy.random.default_rng(seed + 2)
    return [dict(w=w if i == 0 else w.copy(),
                 x=rng.standard_normal((M, C), dtype=cupy.float32).astype(dtype),
                 dy=rng.standard_normal((M, K), dtype=cupy.float32).astype(dtype))
            for i in range(n)]


def reset():
    """Forget the cached launches, so a patched spec or kernel choice takes effect."""
    g._launches.clear()


def fresh(sets):
    """reset(), and drop every plan of the sets' layouts (tables built again on the next call)."""
    reset()
    for s in sets:
        s["w"].layout.plan_cache.clear()


def clear(sets):
    """reset(), and drop each layout's cached calls."""
    reset()
    for s in sets:
        s["w"].layout.plan_cache.pop("calls", None)


def t_dsd(sets, op):
    """(median ms, float32 result of the first set) of x @ W (fprop) or dy @ W^T (bprop)."""
    if op == "fprop":
        args = [(s["x"], s["w"], cupy.empty(s["dy"].shape, s["x"].dtype)) for s in sets]
    else:
        args = [(s["dy"], s["w"].T, cupy.empty(s["x"].shape, s["x"].dtype)) for s in sets]
    t = bench.time_cuda(lambda a, w, o: matmul(a, w, out=o), args, 3, 20)
    a, w, o = args[0]
    return t, matmul(a, w).astype(cupy.float32)


def t_wgrad(sets):
    """(median ms, the first set's (x^T, dy, out)) of sddmm(x^T, dy) on W's layout."""
    args = [(s["x"].T, s["dy"], s["w"].copy()) for s in sets]
    t = bench.time_cuda(lambda xt, dy, out: sddmm(xt, dy, out.layout, out=out), args, 3, 15)
    return t, args[0]


def wgrad_err(s, out):
    """Relative error (norm-wise over the stored blocks) of the wgrad ``out`` of input set ``s``
    against float64."""
    bs = out.layout.blocksize
    ref = s["x"].T.astype(cupy.float64) @ s["dy"].astype(cupy.float64)
    mask = cupy.kron(cupy.asarray(out.layout.toarray()), cupy.ones((bs, bs), bool))
    ref = cupy.where(mask, ref, 0.0)
    got = out.toarray().astype(cupy.float64)
    return float(cupy.linalg.norm(got - ref) / cupy.linalg.norm(ref))


def err(got, ref):
    """max |got - ref| / max |ref|."""
    return float(cupy.abs(got - ref).max() / cupy.abs(ref).max())


@contextlib.contextmanager
def patched(module, **values):
    """Set module attributes for the block, then put the old ones back."""
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


def fprop_bprop(sets, ref, patch):
    """"fprop ms (err e) / bprop ms (err e)" of the sets under ``patch`` (a function returning a
    context manager), each error against ``ref[op]``, the first result kept there (0 for it).
    An exception is reported in its op's place (a probe goes on)."""
    line = []
    for op in ("fprop", "bprop"):
        fresh(sets)
        try:
            with patch():
                t, out = t_dsd(sets, op)
            e = err(out, ref[op]) if op in ref else 0.0
            ref.setdefault(op, out)
            line.append(f"{t:.4f} (err {e:.1e})")
        except Exception as ex:
            line.append(f"ERROR {type(ex).__name__}: {str(ex)[:200]}")
    return " / ".join(line)


def wgrad_line(sets, patch, check=False):
    """"ms" of sddmm(x^T, dy) on the sets' layouts under ``patch`` (a function returning a
    context manager), with " (err e)" against float64 where ``check``; an exception is
    reported in its place (a probe goes on)."""
    fresh(sets)
    try:
        with patch():
            t, (_, _, out) = t_wgrad(sets)
            e = f" (err {wgrad_err(sets[0], out):.1e})" if check else ""
        return f"{t:.4f}{e}"
    except Exception as ex:
        return f"ERROR {type(ex).__name__}: {str(ex)[:200]}"


def walks_default(sets, first, second, label):
    """``fprop_bprop`` under ``first`` and ``second`` (patch functions), alternated twice, said
    after ``label`` with the queue walks the layout's plans were cached under (v48)."""
    ref = {}
    runs = [fprop_bprop(sets, ref, p) for p in (first, second, first, second)]
    walks = sorted({k[-1] for k in sets[0]["w"].layout.plan_cache
                    if isinstance(k, tuple) and k[0] in ("dsd_queue", "dsd_qlist")})
    say(f"{label} (walks {walks}): " + "; ".join(runs))


def with_knobs(spec_fn, knobs):
    """``spec_fn`` (a ``_specs`` spec function) with the #defines ``knobs`` (a dict) set in every
    spec it returns."""
    def spec(*a, **k):
        return tuple(sorted({**dict(spec_fn(*a, **k)), **knobs}.items()))
    return spec


def queue_knobs(knobs):
    """``_specs.dsd_stream_spec`` with the #defines ``knobs`` set where the spec is on the item
    queue (QUEUE), unchanged elsewhere (the queue's knobs are an #error off it: Barabasi-Albert
    bs 32 falls back to a set without the queue)."""
    from cupy_bsparse import _specs

    orig = _specs.dsd_stream_spec
    on = with_knobs(orig, knobs)
    return lambda *a, **k: on(*a, **k) if dict(orig(*a, **k)).get("QUEUE") else orig(*a, **k)


def stream_tall_patch(tall=None, **knobs):
    """A patch (a function returning a context manager): STREAM_TALL set to ``tall`` (None: the
    specs' choice) and the #defines ``knobs`` on the item queue's specs (``queue_knobs``)."""
    from cupy_bsparse import _specs

    @contextlib.contextmanager
    def patch():
        spec = queue_knobs(knobs) if knobs else _specs.dsd_stream_spec
        with patched(_specs, STREAM_TALL=tall, dsd_stream_spec=spec):
            yield
    return patch


def queue_knob_sweep(cases, variants, C=8192, K=None):
    """For each (bs, layout kind, M, dtype) of ``cases`` (W (``C``, ``K``), K None: C): one line of each
    (name, knobs) of ``variants`` set on the queue's specs (``queue_knobs``; {} for the default),
    x @ W / x @ W^T ms (max error against the first variant's) and fprop E against dense in the
    same run."""
    from cupy_bsparse import _specs

    for bs, kind, M, dtype in cases:
        sets = problem(M, C, K or C, bs, dtype, kind=kind)
        td = bench.time_cuda(lambda a, b: a @ b, [(sets[0]["x"], sets[0]["w"].toarray())], 3, 20)
        ref = {}
        parts = []
        for name, knobs in variants:
            spec = queue_knobs(knobs) if knobs else _specs.dsd_stream_spec
            # a variant that forces a knob QLIST excludes runs on the queue's own order
            own = ({"QLIST_AHEAD": 0} if set(knobs) & set(_specs.QLIST_EXCLUDES)
                   and "QLIST" not in knobs else {})
            line = fprop_bprop(sets, ref, lambda: patched(_specs, dsd_stream_spec=spec, **own))
            f = float(line.split()[0]) if not line.startswith("ERROR") else float("nan")
            parts.append(f"{name} {line} E {0.1 * td / f:.3f}")
        say(f"{dtype} bs {bs} {kind} M {M} (dense {td:.4f}): " + "; ".join(parts))
        del sets
        fresh([])
        cupy.get_default_memory_pool().free_all_blocks()


TL_CTAS, TL_STEPS, TL_FIELDS = 512, 64, 6  # timeline.cuh: TIMELINE (set here), TL_STEPS, TL_FIELDS


def tall_timeline(bs, knobs, dtype="float32", kind="random", **flags):
    """Per-step stamps of sddmm_tall.cu's consumers (TIMELINE, the first TL_CTAS CTAs of the
    last launch) at M = 4096, C = K = 8192, ``dtype`` and layout ``kind``, with the spec's #defines
    ``knobs`` and the ``_specs`` attributes ``flags`` set: 0 / 1 the producer's acquire begun /
    done, 2 its copies issued; 3 consumer thread 0 sees full. wgmma: 4 the previous batch
    waited for and folded, 5 the split and the A loads done, then the barrier, the batch's
    issue and the next wait on full up to the next 3 ("3-4" the fold, "4-5" the split, "5-3'"
    the rest). mma.sync: 4 thread 0's MMAs done, 5 the last consumer warp's release ("3-4" the
    MMAs, "5-3'" the wait for the next buffer). Logs the medians (ns) and the instrumented
    time."""
    from cupy_bsparse import _specs as sp
    rec_len = 8 + TL_FIELDS * TL_STEPS
    orig = sp.sddmm_tall_spec
    sets = problem(4096, 8192, 8192, bs, dtype, kind=kind)
    fresh(sets)
    with patched(sp, sddmm_tall_spec=with_knobs(orig, {**knobs, "TIMELINE": TL_CTAS}), **flags):
        s1 = sets[1 % len(sets)]
        sddmm(s1["x"].T, s1["dy"], s1["w"].layout)
        (fn,) = [h[0] for k, h in g._launches.items() if k[0] == "sddmm" and k[1] == "tall"]
        spec = [h[3] for k, h in g._launches.items() if k[0] == "sddmm" and k[1] == "tall"][0]
        ptr = fn.kernel.module.get_global_var("bsmm_timeline")
        if not isinstance(ptr, cupy.cuda.MemoryPointer):
            ptr = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(
                int(ptr[0] if isinstance(ptr, tuple) else ptr), TL_CTAS * rec_len * 8, fn), 0)
        buf = cupy.ndarray((TL_CTAS * rec_len,), cupy.uint64, memptr=ptr)
        buf.fill(0)
        s0 = sets[0]
        sddmm(s0["x"].T, s0["dy"], s0["w"].layout)
        cupy.cuda.Device().synchronize()
        rec = buf.get().reshape(TL_CTAS, rec_len).astype(np.int64)
        t, _ = t_wgrad(sets)
    rec = rec[rec[:, 4] != 0]
    span_ns, span_cy = rec[:, 1] - rec[:, 0], rec[:, 3] - rec[:, 2]
    ghz = float(span_cy.sum() / max(1, span_ns.sum()))
    ev = rec[:, 8:].reshape(len(rec), TL_STEPS, TL_FIELDS)
    st = spec["STAGES"]
    m = {k: [] for k in ("period", "3-4", "4-5", "5-3'", "p.wait", "issue>full")}
    for e, n in zip(ev, rec[:, 4] >> 32):     # each CTA's own step count (launches of chunks)
        for k in range(st, min(int(n), TL_STEPS) - 1):
            m["period"].append(e[k, 3] - e[k - 1, 3])
            m["3-4"].append(e[k, 4] - e[k, 3])
            m["4-5"].append(e[k, 5] - e[k, 4])
            m["5-3'"].append(e[k + 1, 3] - e[k, 5])
            m["p.wait"].append(e[k, 1] - e[k, 0])
            m["issue>full"].append(e[k, 3] - e[k, 2])
    say(f"M 4096 {kind} {dtype} bs {bs} wgrad {knobs} {flags}: {t:.4f} ms instrumented; "
        f"{len(rec)} CTAs, loop span median {np.median(span_ns) / 1e3:.1f} us, "
        f"SM clock {ghz:.2f} GHz")
    for k, v in m.items():
        v = np.asarray(v) / ghz
        say(f"   {k:15s} median {np.median(v):7.0f} ns   p10 {np.percentile(v, 10):7.0f}   "
            f"p90 {np.percentile(v, 90):7.0f} ns")
    del sets
    fresh([])


def wgrad_ab(sets, variants, label):
    """Say one line: x @ W's ms, then sddmm(x^T, dy)'s under each (name, patch) of ``variants``
    (``patch`` a function returning a context manager), alternated twice, each with its ratio
    to x @ W and error against float64, and whether every variant's blocks equal the first's
    bit for bit (v52's A / B timings of a wgrad knob)."""
    tf, _ = t_dsd(sets, "fprop")
    runs, blocks = [], {}
    for name, patch in list(variants) * 2:
        fresh(sets)
        with patch():
            t, (_, _, out) = t_wgrad(sets)
        blocks.setdefault(name, out.data.view(cupy.uint32).copy())
        runs.append(f"{name} {t:.4f} ({t / tf:.3f}x, err {wgrad_err(sets[0], out):.1e})")
    first = variants[0][0]
    same = ", ".join(f"{n} {bool((blocks[n] == blocks[first]).all())}" for n, _ in variants[1:])
    say(f"{label}: fprop {tf:.4f}; wgrad " + "; ".join(runs) + f"; bitwise == {first}: {same}")


def free(sets):
    """Drop the input sets (emptied in place) and their plans, and free the memory pool."""
    del sets[:]
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()


def spec_knobs(name, knobs):
    """A patch (a function returning a context manager): the ``_specs`` spec function ``name``
    with the #defines ``knobs`` set in every spec it returns."""
    from cupy_bsparse import _specs

    return lambda: patched(_specs, **{name: with_knobs(getattr(_specs, name), knobs)})


def grouped_knobs(knobs):
    """A ``wgrad_ab`` patch: ``_specs.sddmm_grouped_spec`` with the #defines ``knobs`` set."""
    return spec_knobs("sddmm_grouped_spec", knobs)


def spec_flags(**flags):
    """A ``wgrad_ab`` patch: ``_specs``' module flags (TWO_WAY_PAIRS, SDDMM_GROUPED_TAIL, ...)
    set to ``flags`` for the block."""
    from cupy_bsparse import _specs

    return lambda: patched(_specs, **flags)
