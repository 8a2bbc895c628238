// tf32x3.cuh: float32 products on TF32 tensor cores at float32 accuracy ("3xTF32").
//
// Each float32 operand v is split as hi = v rounded to TF32 (to nearest: add half of TF32's
// last place to the bit pattern, clear the low 13 bits) and lo = v - hi (exact in float32;
// |lo| <= 2^-11 |v|, and the tensor core reads its top 11 significant bits). A product a * b
// is taken as lo_a * hi_b + hi_a * lo_b + hi_a * hi_b; what is dropped (lo_a * lo_b and the
// bits of lo below TF32) is at most about 2^-21 of |a * b| and, since hi is rounded to nearest,
// of either sign, so it does not build up along a sum. (v8's probe split by truncation,
// whose error always points the same way.)
//
// The tensor core truncates (rounds toward zero) when it adds into its accumulator, so a long
// chain of mma into one accumulator drifts: v8 measured 100x FFMA's error at a reduction length
// of 4096. Here every m16n8 tile's three products of one 8-deep step are summed in a fresh
// tile (the first mma reads a zero accumulator) and added to the float32 accumulator with
// FADD, which rounds to nearest: a chain of three truncating adds, then one rounding add per
// 8 terms, like a two-level FFMA sum. The fresh tiles are 4 x NI registers (one row of warp
// tiles at a time), not a second accumulator array.
//
// Edge values (split_tf32): +-Inf and NaN inputs give the IEEE results of FFMA (+-Inf, or NaN
// for Inf * 0, Inf - Inf and NaN).
//
// Used by the TMA kernels (their tile loaders are tf32x3_tiles.cuh) and by common.cuh's
// warp_mma (pointer tiles of dsd_grouped.cu and sddmm_grouped.cu). Needs DTYPE_ID 4 only.
#pragma once

#if DTYPE_ID != 4
#error "tf32x3.cuh is the float32 tensor-core path (DTYPE_ID 4)"
#endif

// TF32_CLAMP 0 (a probe knob, never a default): split_tf32 without its clamp, the default of
// every split_tf32<> and split_all<>. Then an infinite v, or a finite one that rounds up past
// TF32's largest (|v| >= 0x7f7ff000), gives hi infinite and lo NaN or infinite of the other
// sign, so every product sum it enters is NaN: lo * hi_b and hi * hi_b are infinities of
// opposite signs (or Inf * 0), and the tensor core, like IEEE, gives NaN for Inf + -Inf inside
// a product sum and for an infinite accumulator plus the opposite infinity (the H100 measured
// so: v52's edge-input tests). Finite values below that split as with the clamp, bit for bit
// (the clamp does not act on them). A NaN v's hi may be infinite or +-0 (its payload carries
// into the exponent or past the sign); its lo is NaN either way. (Its default: common.cuh.)

// v = hi + lo (see the header). hi is clamped to TF32's largest finite value, so an infinite v
// gives hi finite and lo infinite (its products keep the sign; an Inf * 0 is NaN as in IEEE)
// and a finite v near FLT_MAX cannot round up to an infinite hi; a NaN v gives a NaN lo.
// CLAMP false: the same without the clamp (3 instructions, not 5; see TF32_CLAMP): for a
// kernel that checks its sums for NaN and computes them again with the clamp (TF32_REDO).
template <bool CLAMP = (TF32_CLAMP != 0)>
__device__ __forceinline__ void split_tf32(unsigned v, unsigned& hi, unsigned& lo) {
    const float big = __uint_as_float(0x7f7fe000u);      // the largest finite TF32 value
    float h = __uint_as_float((v + 0x1000u) & 0xffffe000u);
    if (CLAMP) h = fminf(fmaxf(h, -big), big);
    hi = __float_as_uint(h);
    lo = __float_as_uint(__uint_as_float(v) - h);
}

// d = a * b (fresh: from a zero accumulator) or d += a * b for one m16 x n8 tile. Not volatile,
// so the compiler may interleave independent tiles' instructions.
__device__ __forceinline__ void mma_tf32_fresh(float d[4], const unsigned a[4], const unsigned b[2]) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(0.f));
}
__device__ __forceinline__ void mma_tf32(float d[4], const unsigned a[4], const unsigned b[2]) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// hi[i], lo[i] = split_tf32(v[i]) for N fragment registers.
template <int N, bool CLAMP = (TF32_CLAMP != 0)>
__device__ __forceinline__ void split_all(const unsigned* v, unsigned* hi, unsigned* lo) {
#pragma unroll
    for (int i = 0; i < N; ++i) split_tf32<CLAMP>(v[i], hi[i], lo[i]);
}

// Split BYTES of float32 in shared memory once, 16 bytes a thread (thread tid of n takes every
// n-th 16 bytes): the hi parts at the same offsets from `hi` (hi == src: in place), the lo
// parts from `lo` (shared-window addresses, 16-byte aligned). The caller orders it with the
// readers (a barrier before and after).
__device__ __forceinline__ void split_smem_to(unsigned src, unsigned hi, unsigned lo, int bytes,
                                              int tid, int n) {
#pragma unroll 1
    for (int i = tid * 16; i < bytes; i += n * 16) {
        unsigned v[4], h[4], l[4];
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3]) : "r"(src + i) : "memory");
        split_all<4>(v, h, l);
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};"
                     :: "r"(hi + i), "r"(h[0]), "r"(h[1]), "r"(h[2]), "r"(h[3]) : "memory");
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};"
                     :: "r"(lo + i), "r"(l[0]), "r"(l[1]), "r"(l[2]), "r"(l[3]) : "memory");
    }
}

// acc[mi][ni] += sum over s < S of a[s][mi] * b[s][ni] in 3xTF32 for S consecutive 8-deep
// steps, from split fragments (hi, lo). Each tile's 3 S products go into one fresh tile
// (small terms first: the lo * hi and hi * lo products of every step, then the hi * hi ones),
// added to acc with one FADD per 8 S terms: a chain of 3 S - 1 truncating adds (S = 2 measured
// no less accurate than S = 1, v11, docs/perf-notes.md). For each mi the NI tiles' products
// go round by round, so NI independent tensor-core chains are in flight rather than one
// chain at a time (v9: this order measured the same as the chained one).
template <int S, int MI, int NI>
__device__ __forceinline__ void mma_3xtf32_split(float (&acc)[MI][NI][4], const unsigned (&ah)[S][MI][4],
                                                 const unsigned (&al)[S][MI][4], const unsigned (&bh)[S][NI][2],
                                                 const unsigned (&bl)[S][NI][2]) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
        float t[NI][4];
#pragma unroll
        for (int s = 0; s < S; ++s) {
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) {
                if (s == 0) mma_tf32_fresh(t[ni], al[s][mi], bh[s][ni]);
                else mma_tf32(t[ni], al[s][mi], bh[s][ni]);
            }
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma_tf32(t[ni], ah[s][mi], bl[s][ni]);
        }
#pragma unroll
        for (int s = 0; s < S; ++s)
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma_tf32(t[ni], ah[s][mi], bh[s][ni]);
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[mi][ni][q] += t[ni][q];
    }
}

// The same from float32 fragments a, b (split here; CLAMP as split_tf32's).
template <int S, int MI, int NI, bool CLAMP = (TF32_CLAMP != 0)>
__device__ __forceinline__ void mma_3xtf32(float (&acc)[MI][NI][4], const unsigned (&a)[S][MI][4],
                                           const unsigned (&b)[S][NI][2]) {
    unsigned ah[S][MI][4], al[S][MI][4], bh[S][NI][2], bl[S][NI][2];
    split_all<S * MI * 4, CLAMP>(&a[0][0][0], &ah[0][0][0], &al[0][0][0]);
    split_all<S * NI * 2, CLAMP>(&b[0][0][0], &bh[0][0][0], &bl[0][0][0]);
    mma_3xtf32_split<S, MI, NI>(acc, ah, al, bh, bl);
}

// One 8-deep step (S = 1).
template <int MI, int NI, bool CLAMP = (TF32_CLAMP != 0)>
__device__ __forceinline__ void mma_3xtf32(float (&acc)[MI][NI][4], const unsigned (&a)[MI][4],
                                           const unsigned (&b)[NI][2]) {
    mma_3xtf32<1, MI, NI, CLAMP>(acc, reinterpret_cast<const unsigned (&)[1][MI][4]>(a),
                                 reinterpret_cast<const unsigned (&)[1][NI][2]>(b));
}

// Whether any of the N floats at a is NaN (a TF32_REDO kernel's check of its sums).
template <int N>
__device__ __forceinline__ bool any_nan(const float* a) {
    bool bad = false;
#pragma unroll
    for (int i = 0; i < N; ++i) bad |= a[i] != a[i];
    return bad;
}
