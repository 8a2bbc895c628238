"""A CPU model of sddmm_tall.cu's waves (perf-notes v59): the makespan of its CTAs on 132 SMs,
to predict TSPLIT (``_specs.tall_tail_split``) before the device times it.

Each CTA takes ``steps`` steps of (n + 1) tiles of 2 KB (x's and its n dy blocks', 32 rows of
bs 32 in 16 bits). Alone, a step takes L us (one copy's round trip: a CTA is latency-bound,
v31's timeline), so a CTA draws at most (n + 1) / L tiles/us. An SM serves at most B tiles/us,
shared max-min fairly among its CTAs (a CTA of fewer tiles a step steps faster). Pending CTAs
go, in grid order, to the SM running the fewest (at most ``slots`` an SM; packing one freed
SM's slots instead put the non-square shape at 237 us whatever L, against the ~180 measured).
B = 27 (7.2 TB/s, the L2 read rate v31 measured). Checked against v31's segment-size sweep
(random, fp16, M = 4096, before the even cut; ``validate``): NB 8 / 7 / 5 at 3 / 4 / 5 CTAs
an SM 294 / 280 / 306-321 us (L 0.3-0.45) against 309.6 / 287.7 / 304.3 measured; the
non-square shape 163-176 against about 180. (An earlier form that shared B in proportion to
demand, every CTA of an SM stepping alike, put NB 5 at 360.)

    PYTHONPATH=. python probes/tall_wave_model.py
"""
import numpy as np
import scipy.sparse as sp

from cupy_bsparse import _specs, _work_lists, bench

B, L, NSM, SLOTS = 27.0, 0.45, 132, 4


def segments(nr, nc, density=0.1, nb=7, seed=0):
    """Block counts of the even-cut segments of a random nr x nc block layout, largest first."""
    c = sp.csr_matrix(bench.make_mask("random", nr, nc, density, seed=seed))
    seg = _work_lists.segment_table(c.indptr.astype(np.int64), nb, True, np)
    return np.sort(seg[:, 2])[::-1]


def plan(counts, M, split=None):
    """(blocks, steps) of each CTA in grid order; ``split`` a tall_tail_split answer."""
    steps = -(-M // 32)
    if not split or not split[2]:
        return [(int(n), steps) for n in counts]
    pieces, rows, nsplit = split
    head = [(int(n), steps) for n in counts[:len(counts) - nsplit]]
    return head + [(int(n), -(-min(rows, M - k * rows) // 32))
                   for n in counts[len(counts) - nsplit:] for k in range(pieces)]


def simulate(ctas, lat=L, bw=B, nsm=NSM, slots=SLOTS):
    """The makespan in us of ``ctas`` ((blocks, steps) in grid order)."""
    running = [[] for _ in range(nsm)]      # per SM: [steps left, tiles a step]
    qi, t = 0, 0.0
    while True:
        while qi < len(ctas):               # dispatch to the least-loaded SM
            k = min(range(nsm), key=lambda j: len(running[j]))
            if len(running[k]) >= slots:
                break
            n, st = ctas[qi]
            qi += 1
            running[k].append([float(st), n + 1.0])
        if not any(running):
            return t
        rates = []                          # steps/us of each CTA
        for r in running:
            share, left = [0.0] * len(r), bw
            for j, (cap, i) in enumerate(sorted((c[1] / lat, i) for i, c in enumerate(r))):
                share[i] = min(cap, left / (len(r) - j))     # max-min fair tiles/us
                left -= share[i]
            rates.append([share[i] / c[1] for i, c in enumerate(r)])
        dt = min(c[0] / rates[k][i] for k, r in enumerate(running) for i, c in enumerate(r))
        t += dt
        for k, r in enumerate(running):
            for i, c in enumerate(r):
                c[0] -= rates[k][i] * dt
            running[k] = [c for c in r if c[0] > 1e-9]


def validate():
    """v31's segment-size sweep (random, fp16 bs 32, M = 4096, the full cut) against the model."""
    for nb, slots, measured in ((8, 3, 309.6), (7, 4, 287.7), (5, 5, 304.3)):
        counts = segments(256, 256, nb=nb)
        print(f"NB {nb}, {slots} CTAs an SM: {len(counts)} segments, model "
              f"{simulate(plan(counts, 4096), lat=0.3, slots=slots):.1f} / "
              f"{simulate(plan(counts, 4096), slots=slots):.1f} us (L 0.3 / {L}), "
              f"measured {measured}")


def main():
    shapes = ((256, 128, 4095), (256, 128, 2048), (256, 128, 8192), (256, 128, 1024),
              (64, 64, 4096), (128, 128, 4096), (128, 256, 4095), (256, 256, 4096))
    for nr, nc, M in shapes:
        counts = segments(nr, nc)
        old = _specs.TALL_TSPLIT
        _specs.TALL_TSPLIT = "1"
        rule = _specs.tall_tail_split(len(counts), NSM * SLOTS, M, 32)
        _specs.TALL_TSPLIT = old
        floor = (counts.sum() + len(counts)) * -(-M // 32) / (NSM * B)
        print(f"W {nr * 32} x {nc * 32}, M {M}: {len(counts)} segments, rule {rule}: "
              f"{simulate(plan(counts, M)):.1f} -> {simulate(plan(counts, M, rule)):.1f} us "
              f"(L2 bytes floor {floor:.1f})")
    counts = segments(128, 128)
    for pieces in (2, 3, 4):
        split = _specs.tall_pieces(4096, pieces, 32) + (len(counts),)
        print(f"W 4096 x 4096, M 4096, every segment in {pieces}: "
              f"{simulate(plan(counts, 4096, split)):.1f} us")


if __name__ == "__main__":
    validate()
    main()
