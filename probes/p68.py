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
then the rest's items (count, units a warp, staged tiles a block) against random's. Then the
grouped kernel's items shaped 32 dy block-columns by 64 x column blocks (R 32, NCX 64: the same
stage bytes, 128 registers, no spills) instead of 64 by 32: the count says the rest stages
0.765 -> 0.663 tiles a block in 11% fewer items (random 0.469 -> 0.458), but v56's DMASK cut
12% of the tiles and lost 1.4%, so only the device can say (errors against float64 checked).

    PYTHONPATH=.:probes python3 probes/p68.py
"""
import contextlib

import cupy

from _common import free, patched, problem, say, wgrad_line, with_knobs
from cupy_bsparse import _specs, _work_lists, bench
from cupy_bsparse.matrix import BlockSparseMatrix


def coarse(value, overlap=None, items=None):
    """COARSE_WGRAD ``value`` and COARSE_OVERLAP ``overlap``; ``items``: (R, NCX) of the grouped
    kernel's items where given."""
    spec = (with_knobs(_specs.sddmm_grouped_spec, dict(R=items[0], NCX=items[1])) if items
            else _specs.sddmm_grouped_spec)

    @contextlib.contextmanager
    def patch():
        with patched(_specs, COARSE_WGRAD=value, COARSE_OVERLAP=overlap, sddmm_grouped_spec=spec):
            yield
    return patch


def on(layout, sets):
    """The sets with W replaced by a matrix of ``layout`` (zeros): its wgrad is the part's."""
    bs = layout.blocksize
    w = BlockSparseMatrix.from_layout(layout, cupy.zeros((layout.nnzb, bs, bs), cupy.float32))
    return [dict(s, w=w) for s in sets]


def items(layout, shape=None):
    """sddmm_grouped.cu's items on ``layout`` (``shape``: (R, NCX), else the spec's): count,
    units, mean units a warp, tiles a block."""
    spec = dict(_specs.sddmm_grouped_spec(8, 0, 4096))
    if shape:
        spec.update(R=shape[0], NCX=shape[1])
    it, gent, crow = (a.get() for a in _work_lists.sddmm_grouped_plan(layout, spec.items()))
    units = it[:, 2] - it[:, 1]
    tiles = (it[:, 3] + spec["R"]).sum() / layout.nnzb
    return (f"{len(it)} items, {units.sum()} units, {units.mean() / spec['NW']:.2f} units a warp, "
            f"{tiles:.3f} tiles staged a block")


say(bench.gpu_name())
ba = problem(4096, 8192, 8192, 8, "float32", kind="barabasi_albert")
plan = _work_lists.coarse_plan(ba[0]["w"].layout, 2)
say(f"Barabasi-Albert: {ba[0]['w'].layout.nnzb} blocks, coarse {plan.ncoarse}, rest {plan.nrest}")
rest, lump = on(plan.rest, ba), on(plan.coarse, ba)
for name, sets, patch in (("default", ba, coarse(None)), ("in sequence", ba, coarse(None, "0")),
                          ("direct", ba, coarse("0")), ("rest alone", rest, coarse("0")),
                          ("coarse alone", lump, coarse("0"))) * 2:
    say(f"  {name}: {wgrad_line(sets, patch)}")
say(f"  rest's items: {items(plan.rest)}; R 32 NCX 64: {items(plan.rest, (32, 64))}")
for name, sets, patch in (("default", ba, coarse(None)),
                          ("default, R 32 NCX 64", ba, coarse(None, items=(32, 64))),
                          ("rest alone", rest, coarse("0")),
                          ("rest alone, R 32 NCX 64", rest, coarse("0", items=(32, 64)))):
    say(f"  {name}: {wgrad_line(sets, patch, check=True)}, again {wgrad_line(sets, patch)}")
del rest[:], lump[:]
free(ba)
rnd = problem(4096, 8192, 8192, 8, "float32", kind="random")
say(f"random: {rnd[0]['w'].layout.nnzb} blocks; items: {items(rnd[0]['w'].layout)}; R 32 NCX 64: "
    f"{items(rnd[0]['w'].layout, (32, 64))}")
for name, patch in (("direct", coarse(None)), ("R 32 NCX 64", coarse(None, items=(32, 64)))) * 2:
    say(f"  {name}: {wgrad_line(rnd, patch, check=True)}")
free(rnd)
