"""Probe 34: the item queue (QUEUE 1) for 16-bit x @ W at M = 64 (docs/perf-notes.md v35).

At M = 64, C = K = 16384, d = 0.1, the stream kernel takes one CTA a column: bs 64 has 256
columns of Binomial(256, 0.1) blocks in 264 slots, so the longest column (about 38 blocks
against a mean of 25.6) sets the tail (v21), and v23's PERSIST, which cut the columns evenly,
paid split-K epilogues and lost. The queue balances without splitting: the resident CTAs take
whole columns, longest first, from a counter, with one deep ring each that runs on across
items. It was built for M >= 1024 (mma.sync consumers only); here it runs at BM 64 with one CTA
an SM (deep rings) or two.

    PYTHONPATH=.:probes python probes/p34.py [bs64|bs32|stages]

Each line: the variant, x @ W / x @ W^T median ms (max error against the default's), fprop E."""
import sys

from p33 import compare  # noqa: E402  (p33 prints the device name)

MMA = {"WGMMA": 0}
Q = {"QUEUE": 1}
M22 = {**MMA, "WARPS_M": 2, "WARPS_N": 2}
#: (the first run, H100: every queue variant was slower, and slower at one CTA an SM than at
#: two: bs 64 0.0263 -> 0.0327 / 0.0380 ms, bs 32 0.0315 -> 0.040 / 0.059; perf-notes v35)
VARIANTS = {
    64: [("default (wgmma, chunks, 5 stages, 2 CTAs an SM)", {}),
         ("mma.sync 2x2, chunks, 5 stages", {**M22, "STAGES": 5}),
         ("queue, mma.sync 2x2, 6 stages (2 CTAs an SM)", {**M22, **Q, "STAGES": 6}),
         ("queue, mma.sync 2x2, 8 stages (1 CTA an SM)", {**M22, **Q, "STAGES": 8}),
         ("queue, mma.sync 2x2, 12 stages", {**M22, **Q, "STAGES": 12}),
         ("queue, mma.sync 4x1, 12 stages", {**MMA, **Q, "WARPS_M": 4, "WARPS_N": 1, "STAGES": 12}),
         ("queue, mma.sync 4x2, 12 stages", {**MMA, **Q, "WARPS_M": 4, "WARPS_N": 2, "STAGES": 12})],
    32: [("default (chunks, 4x1 warps, 8 stages)", {}),
         ("queue, 4x1, 16 stages (2 CTAs an SM)", {**Q, "STAGES": 16}),
         ("queue, 4x1, 24 stages (1 CTA an SM)", {**Q, "STAGES": 24}),
         ("queue, 4x1, 32 stages", {**Q, "STAGES": 32}),
         ("queue, 4x2, 32 stages", {**Q, "WARPS_N": 2, "STAGES": 32}),
         ("queue, 2x2, 32 stages", {**Q, "WARPS_M": 2, "WARPS_N": 2, "STAGES": 32})],
}
#: `stages`: the chunks (the default schedule) with deeper rings at two CTAs an SM. p19 queue64:
#: the default's copies take 2.2 us from issue to use, its longest columns (38 blocks against a
#: mean of 25.5) run last at about one ring a round trip, so a sixth stage shortens the tail.
STAGES = [("default (5 stages)", {}), ("6 stages", {"STAGES": 6}),
          ("mma.sync 2x2, 6 stages", {**M22, "STAGES": 6})]


def run(bs, m=64, dtype="float16", pick=None):
    variants = VARIANTS[bs] if pick is None else [VARIANTS[bs][i] for i in pick]
    compare(bs, "random", m, dtype, [(n, k, {}) for n, k in variants], n=16384)


if __name__ == "__main__":
    arg = sys.argv[1] if sys.argv[1:] else "all"
    if arg in ("bs64", "all"):
        run(64)
    if arg in ("bs32", "all"):
        run(32)
    if arg == "stages":
        for dtype in ("float16", "bfloat16"):
            compare(64, "random", 64, dtype, [(n, k, {}) for n, k in STAGES], n=16384)
