"""CPU model of sddmm_tall.cu's float32 bs 16 wgmma consumers (WGMMA 1, BS 16; docs/perf-notes.md
v26), checked against x^T dy in float64 with no GPU.

It mirrors the kernel's index math, line for line:
  - the TMA tiles in shared memory (f32_off<BK>, the 64-byte swizzle) for x and the 8 dy blocks;
  - SplitKmajor16: x's tile split into K-major hi and lo planes (f32_off<16>), per thread and
    group; every plane word written once, and the 32 lanes of each load and store in 32
    different banks;
  - the A fragments (ld_a_kpairs at rows 16 kg + 8 kk + 2t, columns g and g + 8) as wgmma's
    m64k8 .tf32 register operand (warp w's rows 16w ..: a0 (g, t), a1 (g + 8, t), a2 (g, t + 4),
    a3 (g + 8, t + 4));
  - wgmma's B read through the descriptors the kernel builds (start pl + lo * XPL + f32_off<16>(0,
    16 kg + 8 k); K-major, 64-byte swizzle: row n at (n / 8) * 512 + (n % 8) * 64, k at 4 bytes,
    the swizzle XOR on the absolute address bits 4-5 with bits 7-8);
  - the 3xTF32 products in wgmma_3xtf32_k16's order into a fresh tile per 16 deep, added to the
    accumulators; the m64n16 accumulator layout; store_tiles_t's addresses, alpha and beta;
  - warps past count (their stale dy slots, NaN here, multiplied; not stored), a warpgroup
    without blocks (no wgmma), M not a multiple of BK (the TMA's zero rows).

    python probes/deskcheck_sddmm_tall_f32w16.py          (about 20 s)

Each mutation of the index math (MUTATIONS) must make the check fail; the script says which.
"""
import sys

import numpy as np

BS, RB, NB = 16, 64, 8


def swz(r):                                    # tma.cuh SWZ at RB 64
    return ((r * RB) >> 7) & (RB // 16 - 1)


def f32_off(rows, r, c):                       # tf32x3_tiles.cuh f32_off<ROWS>
    sc = RB // 4
    return (c // sc) * (rows * RB) + r * RB + ((((c % sc) >> 2) ^ swz(r)) << 4) + ((c & 3) << 2)


def tf32_split(v):
    """hi rounded to TF32 (the kernel's bit trick), lo = v - hi, both float32."""
    b = np.asarray(v, np.float32).view(np.uint32)
    hi = ((b + np.uint32(0x1000)) & np.uint32(0xffffe000)).view(np.float32)
    return hi, (np.asarray(v, np.float32) - hi).astype(np.float32)


def tf32(v):                                   # what the tensor core reads of an operand
    return (np.asarray(v, np.float32).view(np.uint32) & np.uint32(0xffffe000)).view(np.float32)


class Smem:
    """Word-addressed shared memory: writes counted, reads of unwritten words fail."""

    def __init__(self):
        self.w, self.writes = {}, {}

    def st(self, a, v):
        assert a % 4 == 0
        self.w[a] = np.float32(v)
        self.writes[a] = self.writes.get(a, 0) + 1

    def ld(self, a):
        assert a in self.w, f"read of unwritten shared word at {a:#x}"
        return self.w[a]


def split_x(sm, src, hi, lo, BK, NCT, mut, banks):
    """SplitKmajor16<BK, NCT> (element j of warp w: group w + NCT / 32 * j); records each warp
    access's banks."""
    for warp in range(NCT // 32):
        for grp in (warp + j * (NCT // 32) for j in range(BK * 16 // NCT)):
            ld_b, st_b = [], []
            for lane in range(32):
                u, i = lane >> 4, (lane >> 2) & 3
                nq, v = grp & 3, (grp >> 2) & 1
                h = 2 * (grp >> 3) + ((u ^ v) if mut != "split_h" else v)
                n = 4 * nq + (lane & 3)
                p = 8 * h + 4 * u + i
                r = 8 * h + 2 * i + u if mut != "split_row" else 8 * h + i + 4 * u
                a = src + f32_off(BK, r, n)
                vh, vl = tf32_split(sm.ld(a))
                o = f32_off(16, n, p)
                sm.st(hi + o, vh)
                sm.st(lo + o, vl)
                ld_b.append((a // 4) % 32)
                st_b.append(((hi + o) // 4) % 32)
            banks.append((len(set(ld_b)), len(set(st_b))))


def ld_a_kpairs(sm, tile, BK, k2, c):
    return [sm.ld(tile + f32_off(BK, k2, c)), sm.ld(tile + f32_off(BK, k2, c + 8)),
            sm.ld(tile + f32_off(BK, k2 + 1, c)), sm.ld(tile + f32_off(BK, k2 + 1, c + 8))]


def b_word(sm, start, n, kk):
    """wgmma's B element (k kk, n) from a K-major 64-byte-swizzled operand at `start`."""
    a = start + (n // 8) * (8 * RB) + (n % 8) * RB + kk * 4
    a ^= ((a >> 7) & 3) << 4
    return sm.ld(a)


def run(M, count, BK, BPW, alpha, beta, mut=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, BS)).astype(np.float32)
    dy = rng.standard_normal((M, NB * BS)).astype(np.float32)
    old = rng.standard_normal((NB, BS, BS)).astype(np.float32)
    out = old.copy()
    T = BK * BS * 4                              # T_BYTES
    S = (1 + NB) * T                             # S_BYTES
    XPL = BS * BK * 4
    t0 = 512                                     # ATOM-aligned
    pl0 = t0 + 2 * S                             # two ring buffers are enough for the model
    assert T % 512 == 0 and XPL % 512 == 0 and pl0 % 512 == 0
    nsteps = (M + BK - 1) // BK
    KG = BK // 16
    acc = {}                                     # (warp, lane) -> 8 floats (m16n8 x 2 order)
    banks = []
    planes_ok = True
    sm = Smem()
    for step in range(nsteps):
        buf = t0 + (step % 2) * S
        rows = slice(step * BK, step * BK + BK)
        xt = np.zeros((BK, BS), np.float32)
        xt[:min(BK, M - step * BK)] = x[rows]
        for r in range(BK):                      # the TMA: x tile, then `count` dy tiles
            for c in range(BS):
                sm.st(buf + f32_off(BK, r, c), xt[r, c])
        for b in range(NB):                      # slots past count: stale words (NaN here)
            dt = np.full((BK, BS), np.nan, np.float32)
            if b < count:
                dt[:] = 0
                dt[:min(BK, M - step * BK)] = dy[rows, b * BS:(b + 1) * BS]
            for r in range(BK):
                for c in range(BS):
                    sm.st(buf + (1 + b) * T + f32_off(BK, r, c), dt[r, c])
        pl = pl0 + (step & 1) * (2 * XPL)
        sm.writes = {}
        split_x(sm, buf, pl, pl + XPL, BK, 256 // BPW, mut, banks)
        # the step's split writes its plane set, every word once, and nothing else
        planes_ok &= (sorted(sm.writes) == list(range(pl, pl + 2 * XPL, 4))
                      and set(sm.writes.values()) == {1})
        for wg, mt in ((wg, mt) for wg in range(2 // BPW) for mt in range(BPW)):
            if 4 * BPW * wg >= count:
                continue                         # no wgmma for a warpgroup without blocks
            tile = 4 * (BPW * wg + mt)           # the tile's first block (every tile issued)
            for kg in range(KG):
                # A fragments of every warp and lane (hi, lo) for k8 steps kk = 0, 1
                A = np.zeros((2, 2, 64, 8), np.float32)   # [kk][hi/lo][row][k position]
                for w4 in range(4):
                    for lane in range(32):
                        g, t2 = lane >> 2, (lane & 3) * 2
                        t = lane & 3
                        for kk in range(2):
                            k2 = 16 * kg + 8 * kk + t2   # every warp loads its slot
                            a = ld_a_kpairs(sm, buf + (1 + tile + w4) * T, BK, k2, g)
                            with np.errstate(invalid="ignore"):
                                ah, al = tf32_split(np.array(a, np.float32))
                            pos = [(g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4)]
                            if mut == "a_order":
                                pos = [(g, t), (g, t + 4), (g + 8, t), (g + 8, t + 4)]
                            for j, (r, k) in enumerate(pos):
                                A[kk, 0, 16 * w4 + r, k] = ah[j]
                                A[kk, 1, 16 * w4 + r, k] = al[j]
                # B through the descriptors; 3xTF32 in wgmma_3xtf32_k16's order
                def B(k, lo):
                    start = pl + (XPL if lo else 0) + f32_off(16, 0, 16 * kg + 8 * k)
                    if mut == "desc_k":
                        start = pl + (XPL if lo else 0) + 16 * kg * 4 + 32 * k
                    return np.array([[b_word(sm, start, n, kk) for n in range(BS)]
                                     for kk in range(8)], np.float32)
                D = np.zeros((64, BS))
                for (ka, la, kb, lb) in ((0, 1, 0, 0), (0, 0, 0, 1), (1, 1, 1, 0), (1, 0, 1, 1),
                                         (0, 0, 0, 0), (1, 0, 1, 0)):
                    with np.errstate(invalid="ignore"):   # rows of warps past count
                        D += tf32(A[ka, la]).astype(np.float64) @ tf32(B(kb, lb)).astype(np.float64)
                for w4 in range(4):
                    for lane in range(32):
                        g, t2 = lane >> 2, (lane & 3) * 2
                        v = acc.setdefault((tile + w4, lane), np.zeros(8))
                        for ni in range(2):      # m16n8 tile ni: (g, c), (g, c+1), (g+8, c), ..
                            c = 8 * ni + t2
                            r = 16 * w4 + g
                            v[4 * ni:4 * ni + 4] += [D[r, c], D[r, c + 1], D[r + 8, c], D[r + 8, c + 1]]
    # store_tiles_t<1, 2>(out + (first + block) * 256, BS, acc[mt], 0, 0, alpha, beta, lane)
    for blk in range(count):
        for lane in range(32):
            v = acc.get((blk, lane), np.zeros(8))
            gc, tr = lane >> 2, (lane & 3) * 2
            for ni in range(2):
                q = (ni * 8 + tr) * BS + gc
                if mut == "store_t":
                    q = gc * BS + ni * 8 + tr
                o = out[blk].reshape(-1)
                for off, val in ((0, v[4 * ni]), (BS, v[4 * ni + 1]), (8, v[4 * ni + 2]),
                                 (BS + 8, v[4 * ni + 3])):
                    o[q + off] = alpha * val + beta * o[q + off] if beta else alpha * val
    ref = np.stack([alpha * (x.astype(np.float64).T @ dy[:, b * BS:(b + 1) * BS].astype(np.float64))
                    + beta * old[b] for b in range(NB)])
    err = max(np.abs(out[b] - ref[b]).max() / max(np.abs(ref[b]).max(), 1e-30) for b in range(count)) \
        if count else 0.0
    untouched = all(np.array_equal(out[b], old[b]) for b in range(count, NB))
    bank_ok = all(l == 32 and s == 32 for l, s in banks)
    return err, untouched, planes_ok, bank_ok


CASES = [  # M, count, BK, BPW, alpha, beta
    (48, 8, 16, 1, 1.0, 0.0), (33, 8, 16, 2, 0.5, 1.0), (17, 5, 16, 1, 1.0, 0.0),
    (40, 3, 32, 1, 1.0, 0.25), (50, 6, 16, 2, 1.0, 0.0), (64, 8, 32, 1, 2.0, 0.0),
    (1, 1, 16, 2, 1.0, 0.0), (35, 4, 32, 1, 1.0, 0.0), (20, 3, 16, 2, 1.0, 0.0),
]
MUTATIONS = ("split_h", "split_row", "a_order", "desc_k", "store_t")


def main():
    ok = True
    for M, count, BK, BPW, alpha, beta in CASES:
        err, untouched, planes, banks = run(M, count, BK, BPW, alpha, beta)
        good = err < 2e-6 and untouched and planes and banks
        ok &= good
        print(f"M {M:3d} count {count} BK {BK} BPW {BPW} alpha {alpha} beta {beta}: "
              f"rel err {err:.1e}, blocks past count untouched {untouched}, planes whole {planes}, "
              f"conflict-free split {banks}: {'ok' if good else 'FAIL'}")
    for mut in MUTATIONS:
        caught = False
        for M, count, BK, BPW, alpha, beta in CASES[:5]:
            try:
                err, untouched, planes, banks = run(M, count, BK, BPW, alpha, beta, mut)
            except AssertionError:
                caught = True
                break
            if not (err < 2e-6 and untouched and planes and banks):
                caught = True
                break
        print(f"mutation {mut}: {'caught' if caught else 'NOT CAUGHT'}")
        ok &= caught
    print("deskcheck:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
