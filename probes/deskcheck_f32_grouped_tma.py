# Model of dsd_grouped_tma.cu's float32 (DTYPE_ID 4) consumer fragment addressing against the
# TMA 128-byte swizzle, for every lane, mi, wm and block column in the slab.
RB, BOXC, BM, KW = 128, 32, 64, 128
A_BOX = BM * RB
def phys(r, c):                       # byte of slab element (r, c) as the TMA lands it
    return (c // BOXC) * A_BOX + r * RB + ((((c % BOXC) // 4) ^ (r % 8)) << 4) + (c % 4) * 4
inv = {}
for r in range(BM):
    for c in range(KW):
        inv[phys(r, c)] = (r, c)
for WARPS_M in (1, 2):
    WM = BM // WARPS_M; MI = WM // 16
    for wm in range(WARPS_M):
        for cl in range(KW // 8):
            col = cl * 8
            for mi in range(MI):
                # ldmatrix x4: lane l gives the row address of matrix l >> 3
                rows = {}
                for l in range(32):
                    a_lane = (wm * WM + (l & 15)) * RB
                    a_sw = (l & 7) ^ (l >> 4)
                    a = (col // BOXC) * A_BOX + ((((col % BOXC) // 4) ^ a_sw) << 4) + a_lane + mi * 16 * RB
                    rows[l] = a
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    got = []
                    for j in range(4):        # register j from matrix j: row lane/4, word lane%4
                        addr = rows[j * 8 + lane // 4] + (lane % 4) * 4
                        got.append(inv[addr])
                    r0 = wm * WM + mi * 16
                    want = [(r0 + g, col + t), (r0 + g + 8, col + t), (r0 + g, col + t + 4), (r0 + g + 8, col + t + 4)]
                    assert got == want, (WARPS_M, wm, cl, mi, lane, got, want)
# B fragments of an unpadded 8x8 float32 block: b0 = B(k t, n g), b1 = B(k t + 4, n g)
for trans in (0, 1):
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        b_lane = (g * 8 + t if trans else t * 8 + g) * 4
        k4 = (4 if trans else 32) * 4
        for addr, k in ((b_lane, t), (b_lane + k4, t + 4)):
            i, j = divmod(addr // 4, 8)        # stored W block element [i][j]
            assert (j, i) == (k, g) if trans else (i, j) == (k, g)
    banks = [((lane >> 2) * 8 + (lane & 3) if trans else (lane & 3) * 8 + (lane >> 2)) % 32 for lane in range(32)]
    print("trans", trans, "B bank conflicts: max lanes per bank", max(banks.count(b) for b in set(banks)))
print("A fragments: all lanes, tiles and block columns map to A(g,t), A(g+8,t), A(g,t+4), A(g+8,t+4)")
