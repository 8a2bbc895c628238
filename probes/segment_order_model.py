"""CPU model of the wgrad's segment orders (16-bit bs 64 `sddmm_tall.cu`, NB-block segments).

No GPU. For each layout and order it hands the segments to P CTAs in grid order (a CTA takes
the next one when it ends; a segment lasts OVH + its block count, in step units) and reports:
- span: the model's makespan;
- x reads: how often a block-row's x tile comes from HBM, counting a fetch whenever a segment
  starts with no segment of its block-row running (one read a row is 1.00x).

Cuts: NB-block segments and a short last one (the kernel's), or `even` (a row's segments
near-equal). Orders: `rows` (block-row order), `largest` (block counts largest first, stable: the default
for 16-bit), `grouped` (block-rows by their total, largest first, a row's segments side by
side; what `next.sh v44b` times).

    PYTHONPATH=. python probes/segment_order_model.py [NB] [P] [OVH] [BLOCKS]
"""
import heapq
import sys

import numpy as np

from cupy_bsparse import bench
from cupy_bsparse._work_lists import largest_first_order, segment_table


def segments(mask, nb, even=False):
    """(n, 2) int rows (block-row, blocks) of the launcher's cut (``segment_table``)."""
    indptr = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64)
    return segment_table(indptr, nb, even, np)[:, [0, 2]].astype(np.int64)


def orders(seg):
    rows, cnt = seg[:, 0], seg[:, 1]
    total = np.bincount(rows, weights=cnt)
    return {"rows": np.arange(len(seg)), "largest": largest_first_order(cnt, np),
            "grouped": np.lexsort((-cnt, rows, -total[rows]))}


def simulate(seg, order, ctas, ovh):
    """(span, x tile fetches) of ``order`` on ``ctas`` CTAs."""
    free = [(0.0, p) for p in range(ctas)]
    spans = []
    for i in order:
        t, p = heapq.heappop(free)
        end = t + ovh + seg[i, 1]
        spans.append((t, end, seg[i, 0]))
        heapq.heappush(free, (end, p))
    running_until, fetches = {}, 0
    for start, end, row in sorted(spans):
        fetches += running_until.get(row, -1.0) <= start
        running_until[row] = max(running_until.get(row, -1.0), end)
    return max(e for _, e, _ in spans), fetches


def main(nb=8, ctas=132, ovh=1.0, nblk=128):
    for kind in ("random", "small_world", "barabasi_albert"):
        mask = bench.make_mask(kind, nblk, nblk, 0.1, seed=0)
        for even in (False, True):
            seg = segments(mask, nb, even)
            nrows = len(np.unique(seg[:, 0]))
            cells = []
            for name, order in orders(seg).items():
                span, fetches = simulate(seg, order, ctas, ovh)
                cells.append(f"{name} span {span:.1f}, x reads {fetches / nrows:.2f}x")
            print(f"{kind} d 0.1, {nblk} x {nblk} blocks, NB {nb}{' even' if even else ''}: {len(seg)}"
                  " segments; " + "; ".join(cells))


if __name__ == "__main__":
    main(*(f(a) for f, a in zip((int, int, float, int), sys.argv[1:])))
