"""Probe 36: wgmma consumers for 16-bit bs 64 x @ W at M = 4096 on the H100 (docs/perf-notes.md
v35).

v34's ncu of the default (mma.sync, 128-row tiles, 2 x 2 warps, 3 stages, 3 CTAs an SM) had
the L2's output at 81% and the LSU's shared-memory wavefronts at 74% (ldmatrix): per 24 KB a
step lands, the four warps read 48 KB of fragments back, so shared memory carries about 3x
what the copies bring. wgmma reads its operands from shared memory without the LSU, and each
warpgroup reads x's rows once: 32 KB a step at 128 rows and two warpgroups. v13 timed these
shapes on the H200 (1% at best), before v33-v34's changes; this is the H100.

    PYTHONPATH=.:probes python probes/p36.py [queue|eager|over|small|small2|last]

Each line: the variant, x @ W / x @ W^T median ms (max error against the default's), fprop E."""
from p33 import compare  # noqa: E402  (p33 prints the device name)

W = {"WGMMA": 1, "WARPS_N": 1}
VARIANTS = [("default (mma.sync, BM 128, 2x2 warps, 3 stages)", {}, {}),
            ("wgmma BM 128, 2 warpgroups, 3 stages", {**W, "BM": 128, "WARPS_M": 8, "STAGES": 3}, {}),
            ("wgmma BM 128, 2 warpgroups, 4 stages", {**W, "BM": 128, "WARPS_M": 8, "STAGES": 4}, {}),
            ("wgmma BM 128, 1 warpgroup, 4 stages", {**W, "BM": 128, "WARPS_M": 4, "STAGES": 4}, {}),
            ("wgmma BM 256, 2 warpgroups, 4 stages", {**W, "BM": 256, "WARPS_M": 8, "STAGES": 4}, {}),
            ("wgmma BM 256, 2 warpgroups, 5 stages", {**W, "BM": 256, "WARPS_M": 8, "STAGES": 5}, {}),
            ("wgmma BM 256, 4 warpgroups, 4 stages", {**W, "BM": 256, "WARPS_M": 16, "STAGES": 4}, {})]
#: the first run (H100): BM 256 with two warpgroups 0.1713 / 0.1723 -> 0.1586 / 0.1585 ms (fp16;
#: bf16 0.1589 / 0.1588), the rest within 1% of the default or slower. At one CTA an SM each of
#: the 2048 CTAs fills its ring alone; the item queue (QUEUE, one launch, the ring running on
#: across items) fills it once an SM, as v33 found for bs 32.
Q = {**W, "QUEUE": 1}
QUEUE = [("default (mma.sync, BM 128, 2x2 warps, 3 stages)", {}, {}),
         ("wgmma BM 256, 2 warpgroups, 4 stages", {**W, "BM": 256, "WARPS_M": 8, "STAGES": 4}, {}),
         ("  + queue", {**Q, "BM": 256, "WARPS_M": 8, "STAGES": 4}, {}),
         ("wgmma BM 256, 2 warpgroups, 5 stages, queue", {**Q, "BM": 256, "WARPS_M": 8, "STAGES": 5}, {}),
         ("wgmma BM 512 (XB 2), 4 warpgroups, 3 stages, queue",
          {**Q, "BM": 512, "XB": 2, "WARPS_M": 16, "STAGES": 3}, {}),
         ("wgmma BM 512 (XB 2), 2 warpgroups, 3 stages, queue",
          {**Q, "BM": 512, "XB": 2, "WARPS_M": 8, "STAGES": 3}, {}),
         ("wgmma BM 128, 2 warpgroups, 6 stages, queue", {**Q, "BM": 128, "WARPS_M": 8, "STAGES": 6}, {})]
#: the queue run (H100, fp16 / bf16 x @ W ms): BM 256 with two warpgroups 0.1580 / 0.1603 ->
#: 0.1542 / 0.1541 on the queue, 0.1515 / 0.1521 with 5 stages; BM 512 with four 0.1515 /
#: 0.1505; default 0.1721 / 0.1713. Both move about 150 KB an SM in flight over a 3 us round
#: trip. A wgmma stage is released one step late (held while the next batch is issued), so a
#: 3-stage ring of 72 KB keeps one or two in flight; WG_EAGER releases it when its own batch
#: completed. BM 384 (three warpgroups, XB 2 of 192 rows) fits 4 stages of 56 KB.
EAGER = [("default (mma.sync, BM 128, 2x2 warps, 3 stages)", {}, {}),
         ("wgmma BM 256, 2 warpgroups, 5 stages, queue", {**Q, "BM": 256, "WARPS_M": 8, "STAGES": 5}, {}),
         ("  WG_EAGER", {**Q, "BM": 256, "WARPS_M": 8, "STAGES": 5, "WG_EAGER": 1}, {}),
         ("wgmma BM 512, 4 warpgroups, 3 stages, queue, WG_EAGER",
          {**Q, "BM": 512, "XB": 2, "WARPS_M": 16, "STAGES": 3, "WG_EAGER": 1}, {}),
         ("wgmma BM 384, 3 warpgroups, 4 stages, queue",
          {**Q, "BM": 384, "XB": 2, "WARPS_M": 12, "STAGES": 4}, {}),
         ("  WG_EAGER", {**Q, "BM": 384, "XB": 2, "WARPS_M": 12, "STAGES": 4, "WG_EAGER": 1}, {})]
#: the eager run (H100, x @ W / x @ W^T ms, fp16; bf16): BM 512, four warpgroups, 3 stages,
#: queue, WG_EAGER 0.1390 / 0.1392; 0.1394 / 0.1395 against the default's 0.1716 / 0.1717;
#: 0.1710 / 0.1716 (E 0.440 / 0.433). BM 256 with WG_EAGER 0.1425; BM 384 0.1453.
#: `over`: that set over layouts (whole columns as items: Barabasi-Albert's hubs) and M, and bs
#: 32's queue set with the same consumers.
B512 = {**Q, "BM": 512, "XB": 2, "WARPS_M": 16, "STAGES": 3, "WG_EAGER": 1}
OVER = [("default", {}, {}), ("wgmma BM 512, 4 warpgroups, 3 stages, queue, WG_EAGER", B512, {})]
Q32E = [("default (the queue's set: mma.sync, BM 512, 8 warps, 6 stages)", {}, {}),
        ("  wgmma, 4 warpgroups, WG_EAGER", {**W, "WARPS_M": 16, "WG_EAGER": 1}, {}),
        ("  wgmma, 2 warpgroups, WG_EAGER", {**W, "WARPS_M": 8, "WG_EAGER": 1}, {})]
#: `small` (H100, fp16 x @ W ms, default / 512-row / 256-row): M = 65 0.0165 / 0.0368 / 0.0246,
#: 128 0.0156 / 0.0285 / 0.0232, 256 0.0188 / 0.0304 / 0.0192, 512 0.0352 / 0.0284 / 0.0313, 768
#: 0.0428 / 0.0526 / 0.0361. `small2`: M = 300, 384, 448.
#: `small`: the set below M = 1024 (BM 512 wastes rows; BM 256 with WG_EAGER beside it)
B256 = {**Q, "BM": 256, "WARPS_M": 8, "STAGES": 5, "WG_EAGER": 1}
SMALL = OVER + [("wgmma BM 256, 2 warpgroups, 5 stages, queue, WG_EAGER", B256, {})]
#: `last`: the default 512-row set (v35) against box and tile variants, for the 3-5% the row
#: lacks (E 0.427-0.437 against 0.45 in the v35 bench)
LAST = [("default (BM 512, 4 warpgroups, 3 stages, queue, WG_EAGER)", {}, {}),
        ("  x in four 128-row boxes (XB 4)", {"XB": 4}, {}),
        ("BM 448, 7 warpgroups of 64 rows, XB 2", {**B512, "BM": 448, "WARPS_M": 28}, {})]
#: bs 32 at M = 4096 (the queue's set, mma.sync, 512-row tiles, 6 stages) on wgmma
Q32 = [("default (the queue's set: mma.sync, BM 512, 8 warps, 6 stages)", {}, {}),
       ("  wgmma, 4 warpgroups", {**W, "WARPS_M": 16}, {}),
       ("  wgmma, 2 warpgroups", {**W, "WARPS_M": 8}, {})]

if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["last"]:
        compare(64, "random", 4096, "float16", LAST)
    elif sys.argv[1:] == ["small2"]:   # between the 256 and 512 of `small`
        for m in (300, 384, 448):
            compare(64, "random", m, "float16", SMALL)
    elif sys.argv[1:] == ["small"]:
        for m in (65, 128, 256, 512, 768):
            compare(64, "random", m, "float16", SMALL)
    elif sys.argv[1:] == ["over"]:
        for kind in ("barabasi_albert", "small_world"):
            compare(64, kind, 4096, "float16", OVER)
        for m in (1024, 2048, 8192):
            compare(64, "random", m, "float16", OVER)
        compare(32, "random", 4096, "float16", Q32E)
    elif sys.argv[1:] == ["eager"]:
        for dtype in ("float16", "bfloat16"):
            compare(64, "random", 4096, dtype, EAGER)
    elif sys.argv[1:] == ["queue"]:
        for dtype in ("float16", "bfloat16"):
            compare(64, "random", 4096, dtype, QUEUE)
        compare(32, "random", 4096, "float16", Q32)
    else:
        for dtype in ("float16", "bfloat16"):
            compare(64, "random", 4096, dtype, VARIANTS if dtype == "float16" else VARIANTS[:1] + VARIANTS[4:6])
