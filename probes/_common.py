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


def problem(M, C, K, bs, dtype, kind="random", seed=0, density=0.1):
    """Input sets as the bench makes them: W (C, K) at ``density`` of layout ``kind``, x (M, C),
    dy (M, K); as many copies as rotate through L2."""
    mask = bench.make_mask(kind, C // bs, K // bs, density, seed=seed)
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


def with_knobs(spec_fn, knobs):
    """``spec_fn`` (a ``_specs`` spec function) with the #defines ``knobs`` (a dict) set in every
    spec it returns."""
    def spec(*a, **k):
        return tuple(sorted({**dict(spec_fn(*a, **k)), **knobs}.items()))
    return spec
