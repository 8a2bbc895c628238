"""CPU model (v46; no GPU): how many CTAs of dsd_stream.cu's item queue read the same x tile at
once, for x @ W at 16-bit bs 64 and 32, M = 4096 (8 row tiles of 512), C = K = 8192, d = 0.1,
on the bench's seed-0 masks. One step time (1.26 us) and epilogue (1 us) for both block sizes,
so the counts are in steps. P CTAs take (row tile, column) items in queue order: a row tile's
columns longest first, ties by column index or by ``_work_lists.scrambled_index``. An item's
step s reads x tile (row tile, k_s) over [t0 + s * period, t0 + (s + 1) * period), then an
epilogue. For every step it counts the other CTAs whose step on the same tile overlaps it, and
the distinct x tiles read in a window of 8 periods. The walks: ascending k (the default), a
scrambled key of k (QUEUE_WALK "hashed"), the x blocks on most columns first (in powers of two,
then hashed: "hubs", v47), k mod 13, and v35's rotation (p39.py, measured). v45
asked whether small world's 7-8% slower blocks come from its locality; ``next.sh v47``
measures the layouts modelled here (docs/perf-notes.md v46).

    PYTHONPATH=. python probes/sim_queue_sharing.py [sweep]

``sweep``: the mean over seeds 0-2 for each walk, layout, d = 0.05 / 0.1 / 0.2 and bs 64 / 32,
then bs 64 d = 0.1 at M = 1024 / 2048 / 8192 (v47: whether one walk serves every layout)."""
import heapq
import sys

import numpy as np

from cupy_bsparse import bench
from cupy_bsparse._work_lists import largest_first_order, scrambled_index, walk_rank

# Times in units of 10 ns, integers: steps exactly a period apart (a band's neighbours) must
# not count as overlapping by float rounding.
P, NT, PERIOD, EPI = 132, 8, 126, 100


def queue(mask, scrambled):
    counts = mask.sum(0)
    ties = scrambled_index(len(counts), np) if scrambled else None
    order = largest_first_order(counts, np, ties)
    return [(r, int(j)) for r in range(NT) for j in order]


def walks(mask, walk=None):
    """Each column's rows in the order an item walks them: ascending k, ascending ``walk[k]``
    (a key a row), or with ``walk`` "rotated" ascending from entry 37 x column mod its length on
    (v35's p39.py)."""
    rows = [np.flatnonzero(mask[:, j]) for j in range(mask.shape[1])]
    if isinstance(walk, str):
        return [np.roll(r, -(37 * j) % max(len(r), 1)) for j, r in enumerate(rows)]
    if walk is not None:
        return [r[np.argsort(walk[r], kind="stable")] for r in rows]
    return rows


def steps(mask, items, walk=None):
    """(start time, CTA, row tile, k) of every step, each column walked as ``walks`` says."""
    rows = walks(mask, walk)
    heap = [(0, p) for p in range(P)]
    out = []
    for r, j in items:
        t, p = heapq.heappop(heap)
        for s, k in enumerate(rows[j]):
            out.append((t + s * PERIOD, p, r, int(k)))
        t += max(len(rows[j]), 1) * PERIOD + EPI
        heapq.heappush(heap, (t, p))
    return np.array(out)


def sharing(ev):
    """Per step: how many other CTAs' steps on the same tile overlap it in time."""
    t, tile = ev[:, 0], ev[:, 2] * 100000 + ev[:, 3]
    share = np.zeros(len(ev), dtype=np.int64)
    for key in np.unique(tile):
        idx = np.flatnonzero(tile == key)
        ts = np.sort(t[idx])
        lo = np.searchsorted(ts, ts - PERIOD, side="right")
        hi = np.searchsorted(ts, ts + PERIOD, side="left")
        share[idx[np.argsort(t[idx])]] = hi - lo - 1
    return share


def spread(mask, walk=None):
    """A cheap statistic tried as a rule by layout: the mean over x blocks of the standard
    deviation of the block's step across the columns that hold it (v46: tracks the model on
    small world and random, not on Barabasi-Albert)."""
    pos = [[] for _ in range(mask.shape[0])]
    for r in walks(mask, walk):
        for s, k in enumerate(r):
            pos[k].append(s)
    return float(np.mean([np.std(p) for p in pos if len(p) > 1]))


def distinct(ev, window=8 * PERIOD):
    t, tile = ev[:, 0], ev[:, 2] * 100000 + ev[:, 3]
    bins = (t // window).astype(np.int64)
    return np.array([len(np.unique(tile[bins == b])) for b in np.unique(bins)])


def main():
    for n in (128, 256):                # bs 64 and bs 32 at C = K = 8192
        sw = bench.make_mask("small_world", n, n, 0.1, seed=0)
        rng = np.random.default_rng(1)      # next.sh v47's permute=1
        shuffled = sw[rng.permutation(n)][:, rng.permutation(n)]
        rnd = bench.make_mask("random", n, n, 0.1, seed=0)
        ba = bench.make_mask("barabasi_albert", n, n, 0.1, seed=0)
        k = np.arange(n)
        hashed = scrambled_index(n, np)
        hubs = {name: walk_rank(np.nonzero(m)[0], "hubs", np)
                for name, m in (("sw", sw), ("rnd", rnd), ("ba", ba))}
        print(f"bs {8192 // n}:")
        cases = [("small world", sw, False, None), ("small world, scrambled ties", sw, True, None),
                 ("small world shuffled (permute 1)", shuffled, False, None),
                 ("small world, walk by hashed k", sw, False, hashed),
                 ("small world, hubs walk", sw, False, hubs["sw"]),
                 ("small world, walk by k mod 13", sw, False, (k % 13) * n + k),
                 ("random", rnd, False, None), ("random, scrambled ties", rnd, True, None),
                 ("random, walk by hashed k", rnd, False, hashed),
                 ("random, hubs walk", rnd, False, hubs["rnd"]),
                 ("random, rotated walk (v35's p39)", rnd, False, "rotated"),
                 ("barabasi-albert", ba, False, None),
                 ("barabasi-albert, walk by hashed k", ba, False, hashed),
                 ("barabasi-albert, hubs walk", ba, False, hubs["ba"])]
        for name, mask, scr, walk in cases:
            ev = steps(mask, queue(mask, scr), walk)
            sh, ds = sharing(ev), distinct(ev)
            end = (ev[:, 0].max() + PERIOD) / 100
            spr = spread(mask, walk)
            print(f"  {name:40s} nnzb {int(mask.sum()):5d}  other CTAs on the step's tile: mean "
                  f"{sh.mean():5.2f}, p90 {np.percentile(sh, 90):4.0f}, max {sh.max():3d}; "
                  f"distinct tiles / 8 periods: median {np.median(ds):4.0f}; last step ends "
                  f"{end:6.1f} us; step spread {spr:5.2f}")


def sweep():
    global NT
    cases = [(n, d, 8) for n in (128, 256) for d in (0.05, 0.1, 0.2)]
    cases += [(128, 0.1, nt) for nt in (2, 4, 16)]
    for n, d, nt in cases:
        NT = nt
        for kind in ("small_world", "random", "barabasi_albert"):
            acc = {}
            for seed in range(3):
                m = bench.make_mask(kind, n, n, d, seed=seed)
                k = np.nonzero(m)[0]
                for walk in ("ascending", "hashed", "hubs"):
                    key = None if walk == "ascending" else walk_rank(k, walk, np)
                    ev = steps(m, queue(m, False), key)
                    acc.setdefault(walk, []).append(sharing(ev).mean())
            print(f"bs {8192 // n:2d} M {512 * nt:4d} {kind:16s} d {d:4.2f}: other CTAs on the "
                  "step's tile, " + ", ".join(f"{w} {np.mean(v):4.2f}" for w, v in acc.items()))
    NT = 8


if __name__ == "__main__":
    sweep() if sys.argv[1:] == ["sweep"] else main()
