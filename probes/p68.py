"""p68 (perf-notes v59, for the next device session): Barabasi-Albert float32 bs 8's wgrad, the
last unmet structured row (E about 0.41 at 2.42-2.46 ms, M = 4096, C = K = 8192), in its parts.
It runs coarse (``_specs.COARSE_WGRAD_RULES[8, 0]``'s hybrid, groups of at least 2): 16,644
coarse blocks on float32 bs 16's ``sddmm_tall.cu`` (row chunks in one launch) and 61,604 left on
``sddmm_grouped.cu`` (TPAIRS items), the two on two streams, then the copy. Which part holds
the time has never been timed alone. Lines, ms (wgrad_line's; alternated twice):
- the default (the hybrid, two streams), COARSE_OVERLAP "0" (the same in sequence),
  COARSE_WGRAD "0" (every block direct);
- the rest's blocks alone and the coarse blocks alone (each as its own layout, direct);
- random's direct wgrad (104,858 blocks) for the rate a block;
then the rest's items (count, units a warp, staged tiles a block) against random's.

    PYTHONPATH=.:probes python3 probes/p68.py
"""
import contextlib

import cupy

from _common import patched, problem, say, wgrad_line, free
from cupy_bsparse import _specs, _work_lists, bench
from cupy_bsparse.matrix import BlockSparseMatrix


def coarse(value, overlap=None):
    @contextlib.contextmanager
    def patch():
        with patched(_specs, COARSE_WGRAD=value, COARSE_OVERLAP=overlap):
            yield
    return patch


def on(layout, sets):
    """The sets with W replaced by a matrix of ``layout`` (zeros): its wgrad is the part's."""
    bs = layout.blocksize
    w = BlockSparseMatrix.from_layout(layout, cupy.zeros((layout.nnzb, bs, bs), cupy.float32))
    return [dict(s, w=w) for s in sets]


def items(layout):
    """sddmm_grouped.cu's items on ``layout``: count, units, mean units a warp, tiles a block."""
    spec = dict(_specs.sddmm_grouped_spec(8, 0, 4096))
    it, gent, crow = (a.get() for a in _work_lists.sddmm_grouped_plan(layout, spec.items()))
    units = it[:, 2] - it[:, 1]
    tiles = (it[:, 3] + spec["R"]).sum() / layout.nnzb
    return (f"{len(it)} items, {units.sum()} units, {units.mean() / spec['NW']:.2f} units a warp, "
            f"{tiles:.3f} tiles staged a block")


say(bench.gpu_name())
ba = problem(4096, 8192, 8192, 8, "float32", kind="barabasi_albert")
plan = _work_lists.coarse_plan(ba[0]["w"].layout, 2)
say(f"Barabasi-Albert: {ba[0]['w'].layout.nnzb} blocks, coarse {plan.ncoarse}, rest {plan.nrest}")
for name, sets, patch in (("default", ba, coarse(None)), ("in sequence", ba, coarse(None, "0")),
                          ("direct", ba, coarse("0")), ("rest alone", on(plan.rest, ba), coarse("0")),
                          ("coarse alone", on(plan.coarse, ba), coarse("0"))) * 2:
    say(f"  {name}: {wgrad_line(sets, patch)}")
say(f"  rest's items: {items(plan.rest)}")
free(ba)
rnd = problem(4096, 8192, 8192, 8, "float32", kind="random")
say(f"random: {rnd[0]['w'].layout.nnzb} blocks, direct {wgrad_line(rnd, coarse(None))}, "
    f"again {wgrad_line(rnd, coarse(None))}; items: {items(rnd[0]['w'].layout)}")
free(rnd)
