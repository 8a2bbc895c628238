"""Read p19's float32 bs 8 x @ W timelines against their plans (CPU only; perf-notes v57).

`p19.py baf32` saves each case's records as OUT/p19_<layout>_float32_8_4096_fprop_0.npy (the
first 1,024 CTAs of dsd_grouped_tma.cu at M = 4096, C = K = 8192, d 0.1). CTA c runs item
c % items of the plan (grid (items, row tiles), launch order blockIdx.y * items + blockIdx.x),
so each recorded step k of it is the plan's step item.first + k. This rebuilds the plans of
random, Barabasi-Albert and Barabasi-Albert shuffled (p63's `permute=5`) and prints:
  - consumer warp 0's busy time (event 4 - 3) against its own blocks in the step (medians,
    and a least-squares line with the longest run of one column's blocks);
  - one model for the step period of all three layouts at once, max(F, a + b x the busiest
    warp's blocks + c x the step's blocks), and each plan's sum under it.

    python probes/timeline_fit.py DIR      (DIR holds the three .npy files)
"""
import os
import sys

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from cupy_bsparse import _specs, _work_lists as wl, bench  # noqa: E402
from cupy_bsparse.block_layout import BlockLayout  # noqa: E402

wl._to_device = lambda *a: tuple(a)      # the plans on the host: no GPU here
wl._ready = lambda p: p
STEPS, FIELDS, GHZ, WARPS, RW = 64, 6, 1.82, 8, 4


def plan(mask):
    """(items, steps, entries) of the shipped float32 bs 8 x @ W plan at M = 4096."""
    lay = BlockLayout.from_mask(mask, 8)
    spec = _specs.dsd_grouped_tma_spec(8, _specs._F32X3, 4096, False, split="pass")
    (item, _, st, ge), _ = wl.dsd_grouped_plan(lay, False, spec, 64, 264, _specs.GROUP_BALANCE)
    return np.asarray(item), np.asarray(st), np.asarray(ge)


def steps_of(rec, mask):
    """Per recorded steady step: (warp 0's blocks, its longest column run, the busiest warp's
    blocks, the step's blocks, warp 0's busy ns, period ns); and the plan's per-step warp
    counts."""
    item, st, ge = plan(mask)
    col = ge[:, 1] & 0xffff
    step = np.searchsorted(st[:, 1], np.arange(ge.shape[0]), side="right") - 1
    per_col = np.zeros((st.shape[0], WARPS * RW), int)
    np.add.at(per_col, (step, col), 1)
    per_warp = per_col.reshape(-1, WARPS, RW).sum(2)
    rows = []
    for c in np.flatnonzero(rec[:, 4]):
        first, end = item[c % item.shape[0], 1:3]
        ev = rec[c, 8:].reshape(STEPS, FIELDS)
        for k in range(2, min(end - first, STEPS) - 1):
            s = first + k
            rows.append((per_warp[s, 0], per_col[s, :RW].max(), per_warp[s].max(),
                         per_warp[s].sum(), (ev[k, 4] - ev[k, 3]) / GHZ,
                         (ev[k, 3] - ev[k - 1, 3]) / GHZ))
    return np.array(rows, float), per_warp


def main(d):
    ba = bench.make_mask("barabasi_albert", 1024, 1024, 0.1, seed=0)
    rng = np.random.default_rng(5)
    cases = {"random": (bench.make_mask("random", 1024, 1024, 0.1, seed=0), "random"),
             "barabasi_albert": (ba, "barabasi_albert"),
             "shuffled": (ba[rng.permutation(1024)][:, rng.permutation(1024)],
                          "barabasi_albert_perm")}
    data = {}
    for name, (mask, tag) in cases.items():
        rec = np.load(os.path.join(d, f"p19_{tag}_float32_8_4096_fprop_0.npy"))
        X, per_warp = data[name] = steps_of(rec, mask)
        fit = np.linalg.lstsq(np.c_[np.ones(len(X)), X[:, 0], X[:, 1]], X[:, 4], rcond=None)[0]
        meds = " ".join(f"{b}:{np.median(X[X[:, 0] == b, 4]):.0f}" for b in range(9)
                        if (X[:, 0] == b).sum() > 50)
        print(f"{name}: {len(X)} steps; warp 0 busy ns by its blocks {meds}; "
              f"busy ~ {fit[0]:.0f} + {fit[1]:.0f} a block + {fit[2]:.0f} a block of the longest run")
    allx = np.concatenate([X for X, _ in data.values()])

    def period(p, mw, tot):
        return np.maximum(p[0], p[1] + p[2] * mw + p[3] * tot)

    p = least_squares(lambda p: period(p, allx[:, 2], allx[:, 3]) - allx[:, 5],
                      [1500, 500, 200, 10]).x
    print(f"period ~ max({p[0]:.0f}, {p[1]:.0f} + {p[2]:.0f} x busiest warp + {p[3]:.1f} x step)")
    base = None
    for name, (X, per_warp) in data.items():
        total = period(p, per_warp.max(1), per_warp.sum(1)).sum()
        base = base or total
        print(f"  {name}: recorded mean {X[:, 5].mean():.0f} ns, model {period(p, X[:, 2], X[:, 3]).mean():.0f}; "
              f"plan {total / 1e3:.0f} us-equivalent ({total / base:.3f}x random)")


if __name__ == "__main__":
    main(sys.argv[1])
