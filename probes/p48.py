"""p48 (perf-notes v49, v50): the weight gradient coarsened 2 x 2 (``_specs.COARSE_WGRAD``).

``raw``: the bs 32 wgrad as it ran before, the bs 64 wgrad on the coarse layout and a cupy
gather of the stored blocks out of it (the first measurement, before coarse_blocks.cu).
Default: for each case, x @ W's time and the wgrad with COARSE_WGRAD "0" / "1" (ms, errors
against float64), alternated twice. ``hybrid`` adds "1" with the rule's least group patched to
2 and 4 (smaller groups on the direct kernel); ``overlap`` times those hybrids with their two
wgrads in sequence ("seq", COARSE_OVERLAP "0") and on two streams; ``rule``: "0" against the
rules as they stand (None); ``side``: those, and with the coarse / the rest's wgrad on the
side stream (COARSE_SIDE "coarse" / "rest"). ``m`` with f32 / f32b16: Barabasi-Albert (and
small world at bs 16) at M = 1024 / 2048 / 8192 (bs 8: d 0.05 / 0.2). C = K = 8192. Usage:

    PYTHONPATH=.:probes python3 probes/p48.py [raw] [hybrid | overlap | rule | side] \
        [quick | dense | f32 | f32b16] [m]
"""
import sys

import cupy
import numpy as np

from _common import fresh, patched, problem, say, t_dsd, t_wgrad, wgrad_err
from cupy_bsparse import _specs, bench
from cupy_bsparse._arrays import bits
from cupy_bsparse.block_layout import BlockLayout
from cupy_bsparse.matrix import random
from cupy_bsparse.ops import sddmm

say(bench.gpu_name())
cases = [("small_world", 4096, "float16", 0.1), ("random", 4096, "float16", 0.1),
         ("barabasi_albert", 4096, "float16", 0.1), ("small_world", 4096, "bfloat16", 0.1)]
if "dense" in sys.argv:     # the fill rule's edge: random layouts denser than 0.1
    cases = [("random", 4096, "float16", d) for d in (0.3, 0.4, 0.5)]
elif "quick" not in sys.argv:
    cases += [("small_world", M, "float16", 0.1) for M in (512, 1024, 2048, 8192)]
    cases += [("small_world", 4096, "float16", d) for d in (0.05, 0.2)]


def raw(sets, lay):
    """The first measurement: bs, 2 bs coarse, cupy gather (ms), the gathered error."""
    mask = np.asarray(lay)
    n, bs = mask.shape[0] // 2, lay.blocksize
    cmask = mask.reshape(n, 2, n, 2).any(axis=(1, 3))
    clay = BlockLayout.from_mask(cmask, 2 * bs).to_gpu()
    tw, (_, _, out) = t_wgrad(sets)
    cw = random((8192, 8192), 2 * bs, layout=clay, dtype=sets[0]["x"].dtype, seed=3,
                device="gpu")
    args = [(s["x"].T, s["dy"], cw.copy()) for s in sets]
    tc = bench.time_cuda(lambda xt, dy, o: sddmm(xt, dy, o.layout, out=o), args, 3, 15)
    cidx = -np.ones(cmask.shape, np.int64)
    cidx[cmask] = np.arange(int(cmask.sum()))
    rows = np.repeat(np.arange(mask.shape[0]), np.diff(lay.to_cpu().indptr))
    cols = lay.to_cpu().indices.astype(np.int64)
    sub = cupy.asarray(cidx[rows // 2, cols // 2] * 4 + 2 * (rows & 1) + (cols & 1))

    def gather(t, o):
        v = bits(t).reshape(-1, 2, bs, 2, bs).transpose(0, 1, 3, 2, 4).reshape(-1, bs, bs)
        bits(o)[...] = v[sub]
    tg = bench.time_cuda(gather, [(args[0][2].data, out.data)], 3, 15)
    sddmm(args[0][0], args[0][1], clay, out=args[0][2])
    gather(args[0][2].data, out.data)
    return (f"nsuper {clay.nnzb}; wgrad bs {bs} {tw:.4f}; coarse {tc:.4f} + gather "
            f"{tg:.4f} (err {wgrad_err(sets[0], out):.1e})")


bs = 32
if "f32b16" in sys.argv:    # float32 bs 16 on bs 32's wgrad (raw: is there a crossover?)
    bs, cases = 16, [(k, 4096, "float32", d) for k in ("small_world", "random")
                     for d in (0.1, 0.3)]
    if "side" in sys.argv:
        cases = [("small_world", M, "float32", d) for M, d in ((4096, 0.1), (2048, 0.1),
                                                             (4096, 0.3))]
    elif "m" in sys.argv:   # v50's rule at other M
        cases = [(k, M, "float32", 0.1) for k in ("small_world", "barabasi_albert")
                 for M in (1024, 2048, 8192)]
elif "f32" in sys.argv:     # float32 bs 8 on bs 16's wgrad
    bs, cases = 8, [(k, 4096, "float32", 0.1) for k in ("small_world", "random")]
    if "side" in sys.argv:
        cases = [("barabasi_albert", M, "float32", 0.1) for M in (4096, 2048)]
    elif "m" in sys.argv:
        cases = [("barabasi_albert", M, "float32", 0.1) for M in (1024, 2048, 8192)]
        cases += [("barabasi_albert", 4096, "float32", d) for d in (0.05, 0.2)]
    elif "raw" not in sys.argv:
        cases += [("barabasi_albert", 4096, "float32", 0.1), ("small_world", 1024, "float32", 0.1)]
# "hybrid": also groups of at least 2 / 4 blocks coarse, the rest on the direct kernel (a rule
# patched in; float32 bs 16 onto bs 32 given one); a variant: (label, COARSE_WGRAD, least)
variants = [("off", "0", None), ("coarse", "1", 1)]
if "rule" in sys.argv:      # the rules as they stand (COARSE_WGRAD None) against off
    variants = [("off", "0", None), ("rule", None, None)]
if "side" in sys.argv:      # ... with the coarse / the rest's wgrad on the side stream, first
    variants = [("off", "0", None), ("rule", None, None), ("coarse side", None, None),
                ("rest side", None, None)]
if "hybrid" in sys.argv:
    variants += [("hybrid 2", "1", 2), ("hybrid 4", "1", 4)]
if "overlap" in sys.argv:   # the hybrids with their two wgrads one after the other, then on two
    variants += [("seq 2", "1", 2), ("seq 4", "1", 4)]      # streams (COARSE_OVERLAP "0"/"1")
    variants += [("hybrid 2", "1", 2), ("hybrid 4", "1", 4)]
for kind, M, dtype, d in cases:
    sets = problem(M, 8192, 8192, bs, dtype, kind=kind, density=d)
    lay = sets[0]["w"].layout
    did = _specs.dtype_id(sets[0]["x"].dtype)
    tf, _ = t_dsd(sets, "fprop")
    if "raw" in sys.argv:
        line = raw(sets, lay)
    else:
        runs, shape = [], []
        for label, knob, least in variants * 2:
            fresh(sets)
            rules = dict(_specs.COARSE_WGRAD_RULES)
            if least is not None:
                cost = rules[bs, did][0].cost if (bs, did) in rules else 3.5
                rules[bs, did] = (_specs.CoarseRule(cost, least),)
            with patched(_specs, COARSE_WGRAD=knob, COARSE_WGRAD_RULES=rules,
                         COARSE_SIDE={"coarse side": "coarse", "rest side": "rest"}.get(label),
                         COARSE_OVERLAP="0" if label.startswith("seq")
                         else "1" if "overlap" in sys.argv else None):
                t, (_, _, out) = t_wgrad(sets)
            runs.append(f"{label}: {t:.4f} ({t / tf:.2f}x, err {wgrad_err(sets[0], out):.1e})")
            for lst in (1, 2, 4) if least is None else (least,):
                plan = lay.plan_cache.get(("coarse", lst))
                if plan is not None and f"least {lst}:" not in " ".join(shape):
                    shape.append(f"least {lst}: {plan.ncoarse} coarse, {plan.nrest} rest")
        line = "; ".join(shape) + "; wgrad " + "; ".join(runs)
    say(f"{kind} {dtype} M {M} d {d} nnzb {lay.nnzb}: fprop {tf:.4f}; {line}")
    del sets
    fresh([])
    cupy.get_default_memory_pool().free_all_blocks()
