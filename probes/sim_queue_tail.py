"""CPU model of dsd_stream.cu's item queue (v37; no GPU): P CTAs take items in queue order
(each row tile's columns longest first, ILV's interleaved tail); an item of n steps takes
n * period + epi us (an empty column one stage), a split half ``comb`` more for its combine.
Prints the makespan, the median and mean CTA finish for ILV 0 / 2 / 3, and the makespan when
the last 66 / 132 / 264 items are cut into two halves of their columns (split-K). 16-bit bs
64, M = 4096 (8 row tiles of 512), C = K = 8192, d = 0.1, the bench's random layouts; period
1.26 us (v36's timeline). v41 (the end): the next item claimed at an item's start, as before
LATE, or near its end, on the non-square shape.

    PYTHONPATH=. python probes/sim_queue_tail.py"""
import heapq

import numpy as np

from cupy_bsparse import bench

def items(lens, ntiles, ilv):
    order = np.argsort(-lens, kind="stable")
    L = lens[order]
    nch = len(L)
    seq = []
    nt = min(ilv, ntiles) if ilv else 1
    base = (ntiles - nt) * nch
    for t in range(ntiles * nch):
        if ilv and t >= base:
            tile = ntiles - nt + (t - base) % nt
            c = (t - base) // nt
        else:
            tile, c = divmod(t, nch)
        seq.append((tile, L[c]))
    return seq

def run(seq, P=132, period=1.26, epi=1.0, split_last=0, comb=0.5):
    # split_last: the last n items of the queue, if longer than 1 step, cut into two halves
    out = []
    n = len(seq)
    for k, (tile, ln) in enumerate(seq):
        if k >= n - split_last and ln >= 2:
            h = ln // 2
            out += [(tile, h, True), (tile, ln - h, True)]
        else:
            out.append((tile, ln, False))
    heap = [(0.0, p) for p in range(P)]
    fin = np.zeros(P)
    for tile, ln, sp in out:
        t, p = heapq.heappop(heap)
        t += max(ln, 1) * period + epi + (comb if sp else 0)
        fin[p] = t
        heapq.heappush(heap, (t, p))
    return fin.max(), np.median(fin), fin.mean()

for seed in (0, 1, 2):
    mask = bench.make_mask("random", 128, 128, 0.1, seed=seed)
    lens = mask.sum(0)           # blocks per output block-column (x @ W)
    for ilv in (0, 2, 3):
        seq = items(lens, 8, ilv)
        mk, med, mean = run(seq)
        line = f"seed {seed} ILV {ilv}: makespan {mk:.1f} median {med:.1f} mean {mean:.1f}"
        for sl in (66, 132, 264):
            mk2, _, _ = run(seq, split_last=sl)
            line += f"; split last {sl}: {mk2:.1f}"
        print(line)
print("cheap epilogue and combine (0.3 / 0.2 us):")
for seed in (0, 1):
    mask = bench.make_mask("random", 128, 128, 0.1, seed=seed)
    lens = mask.sum(0)
    seq = items(lens, 8, 2)
    mk, med, mean = run(seq, epi=0.3, comb=0.2)
    print(seed, f"ILV 2 makespan {mk:.1f} mean {mean:.1f}",
          [f"{run(seq, epi=0.3, comb=0.2, split_last=sl)[0]:.1f}" for sl in (66, 132, 264)])

# v41: when a CTA takes its next item. Until v41 the producer took it from the counter as its
# current item began (``claim=None`` below), so the next item went to the CTA whose item began
# first, not to the one free first. LATE k takes it k steps before the item's end (``claim=k``:
# the producer is STAGES steps ahead of the consumers, so LATE 3 is about k = 5-6 here). The
# non-square shape (M = 4095, C 8192, K 4096) at v40's measured 1.31 us a step: the claim at the
# start gives x @ W 38-57 steps a CTA (measured 41-58), greedy 43-51.


def run_claim(seq, P=132, period=1.31, epi=1.0, claim=None):
    """(finish times, steps) a CTA when each takes its next item at its current item's start
    (``claim`` None) or ``claim`` steps before that item's end."""
    nxt, heap = 0, [(0.0, p, 0.0) for p in range(P)]   # (claim time, CTA, its next start)
    fin, steps = np.zeros(P), np.zeros(P, int)
    while heap:
        _, p, s = heapq.heappop(heap)
        if nxt >= len(seq):
            fin[p] = s
            continue
        ln = seq[nxt][1]
        nxt += 1
        steps[p] += ln
        end = s + max(ln, 1) * period + epi
        at = s if claim is None else max(s, end - epi - claim * period)
        heapq.heappush(heap, (at, p, end))
    return fin, steps


print("the next item claimed at the item's start / 5 steps before its end (LATE 3), ILV 2:")
for seed in (0, 1, 2):
    mask = bench.make_mask("random", 128, 64, 0.1, seed=seed)
    for op, lens in (("x @ W", mask.sum(0)), ("x @ W^T", mask.sum(1))):
        seq = items(lens, 8, 2)
        parts = []
        for name, c in (("start", None), ("late", 5)):
            fin, steps = run_claim(seq, claim=c)
            parts.append(f"{name}: makespan {fin.max():.1f} us, steps {steps.min()}-{steps.max()}")
        print(f"seed {seed} {op}: " + "; ".join(parts))
