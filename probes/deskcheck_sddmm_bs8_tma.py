# Model of sddmm_grouped_tma.cu's float32 bs 8 pair fragments (32-byte x rows with the 32-byte
# swizzle, 128-byte dy rows with the 128-byte swizzle): every lane's loads hit the elements the
# m16n8k8 fragments need under one shared k permutation, without bank conflicts.
X_RB, RB = 32, 128
def x_phys(k, m):
    return k * X_RB + (((m >> 2) ^ ((k >> 2) & 1)) << 4) + (m & 3) * 4
def d_phys(k, c):
    return k * RB + (((c >> 2) ^ (k & 7)) << 4) + (c & 3) * 4
for kk in (0, 8, 16, 24):
    for jl in range(8):
        loads = {name: [] for name in ("a0", "a1", "b0", "b1")}
        perm = {}
        for lane in range(32):
            g, t = lane >> 2, lane & 3
            p0 = 2 * t + ((t ^ (t >> 1)) & 1); p1 = p0 ^ 1
            xa0 = p0 * X_RB + (((g >> 2) ^ ((p0 >> 2) & 1)) << 4) + (g & 3) * 4
            xa1 = p1 * X_RB + (((g >> 2) ^ ((p1 >> 2) & 1)) << 4) + (g & 3) * 4
            c = (jl % 4) * 8 + g
            b0o = p0 * RB + (((c >> 2) ^ p0) << 4); b1o = p1 * RB + (((c >> 2) ^ p1) << 4)
            assert kk * X_RB + xa0 == x_phys(kk + p0, g) and kk * X_RB + xa1 == x_phys(kk + p1, g)
            assert (c & 3) * 4 + kk * RB + b0o == d_phys(kk + p0, c)
            assert (c & 3) * 4 + kk * RB + b1o == d_phys(kk + p1, c)
            perm.setdefault(t, set()).add((p0, p1))
            loads["a0"].append(kk * X_RB + xa0); loads["a1"].append(kk * X_RB + xa1)
            loads["b0"].append(d_phys(kk + p0, c)); loads["b1"].append(d_phys(kk + p1, c))
        ks = sorted(p for t in perm for pair in perm[t] for p in pair)
        assert ks == list(range(8)), ks                      # t -> p0, t + 4 -> p1: a permutation
        for name, addrs in loads.items():
            banks = [(a // 4) % 32 for a in addrs]
            assert len(set(banks)) == 32, (kk, jl, name, banks)
print("float32 pair fragments: addresses as modelled, k rows a permutation, no bank conflicts")
