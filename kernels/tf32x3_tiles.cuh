// tf32x3_tiles.cuh: fragment loads of the 3xTF32 path (tf32x3.cuh) from the TMA kernels'
// swizzled float32 tiles.
//
// Tiles: float32 tiles land from the TMA in sub-tiles of RB-byte rows (RB = min(4 * BS, 128):
// 16 or 32 columns) with the RB-byte swizzle (tma.cuh's SWZ); a ROWS-row tile of BS columns
// is BS * 4 / RB sub-tiles of ROWS rows, one after the other. f32_off gives an element's byte
// offset.
//
// Fragment loads (PTX m16n8k8 .tf32: a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
// b0 (k t, n g), b1 (k t + 4, n g), with g = lane / 4, t = lane % 4):
//   - an operand whose reduction index is contiguous: ldmatrix, each 8 x 8 16-bit matrix being
//     8 rows of four float32 (lane i receives row i / 4, word i % 4 = (g, t));
//   - an operand with its reduction index along rows: 32-bit loads. When both operands are
//     loaded this way (sddmm), the k order inside an 8-deep step is free, and taking k = 2t and
//     2t + 1 (not t and t + 4) puts the four rows a load reads on four different chunk pairs:
//     no bank conflicts. Against an ldmatrix operand (x @ W) the order is t, t + 4, and those
//     loads meet 2-way conflicts.
// Requires common.cuh (with tf32x3.cuh) and tma.cuh with DTYPE_ID 4 and RB defined.
#pragma once

#define F32_SC (RB / 4)                // columns of one sub-tile

// Byte offset of element (r, c) of a float32 tile of ROWS rows (sub-tiles of F32_SC columns).
template <int ROWS>
__device__ __forceinline__ unsigned f32_off(int r, int c) {
    return (c / F32_SC) * (ROWS * RB) + r * RB + ((((c % F32_SC) >> 2) ^ SWZ(r)) << 4) + ((c & 3) << 2);
}

// Fragments of an operand whose reduction index is contiguous (ldmatrix): A rows r0 + mi*16 ..,
// reduction columns k .. k + 7 of a ROWS-row tile at `tile`.
template <int MI, int ROWS>
__device__ __forceinline__ void ld_a_kcontig(unsigned (&a)[MI][4], unsigned tile, int r0, int k, int lane) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
        ldsm_x4(a[mi], tile + f32_off<ROWS>(r0 + mi * 16 + (lane & 15), k + (lane >> 4) * 4));
}

// The same for an operand split ahead (hi at `tile`, lo at tile + LO_OFF bytes, the same layout).
template <int MI, int ROWS, unsigned LO_OFF>
__device__ __forceinline__ void ld_a_kcontig_hl(unsigned (&hi)[MI][4], unsigned (&lo)[MI][4], unsigned tile,
                                                int r0, int k, int lane) {
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
        const unsigned a = tile + f32_off<ROWS>(r0 + mi * 16 + (lane & 15), k + (lane >> 4) * 4);
        ldsm_x4(hi[mi], a);
        ldsm_x4(lo[mi], a + LO_OFF);
    }
}

// B with n along rows and k contiguous (ldmatrix, two n8 tiles per load): n rows n0 + ni*8 ..
template <int NI, int ROWS>
__device__ __forceinline__ void ld_b_kcontig(unsigned (&b)[NI][2], unsigned tile, int n0, int k, int lane) {
    static_assert(NI % 2 == 0, "pairs of n8 tiles");
#pragma unroll
    for (int ni = 0; ni < NI; ni += 2) {
        unsigned r[4];
        ldsm_x4(r, tile + f32_off<ROWS>(n0 + ni * 8 + (lane & 7) + (lane >> 4) * 8, k + ((lane >> 3) & 1) * 4));
        b[ni][0] = r[0]; b[ni][1] = r[1]; b[ni + 1][0] = r[2]; b[ni + 1][1] = r[3];
    }
}

// B with k along rows and n contiguous, k order t, t + 4 (to match ldmatrix's A): rows k .. k + 7.
template <int NI, int ROWS>
__device__ __forceinline__ void ld_b_krows(unsigned (&b)[NI][2], unsigned tile, int n0, int k, int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
        b[ni][0] = lds32(tile + f32_off<ROWS>(k + t, n0 + ni * 8 + g));
        b[ni][1] = lds32(tile + f32_off<ROWS>(k + t + 4, n0 + ni * 8 + g));
    }
}

// An A fragment whose reduction index runs along the rows of a ROWS-row tile (sddmm: x's or dy's
// column block), k order 2t, 2t + 1: columns c, c + 8 of rows k2 = k + 2t and k2 + 1.
template <int ROWS>
__device__ __forceinline__ void ld_a_kpairs(unsigned (&a)[4], unsigned tile, int k2, int c) {
    a[0] = lds32(tile + f32_off<ROWS>(k2, c));
    a[1] = lds32(tile + f32_off<ROWS>(k2, c + 8));
    a[2] = lds32(tile + f32_off<ROWS>(k2 + 1, c));
    a[3] = lds32(tile + f32_off<ROWS>(k2 + 1, c + 8));
}

// acc[j][MI][NI] += A^T B_j over the first KD rows of float32 tiles whose rows are the
// reduction index (sddmm: A = x's column block, m contiguous; B_j = dy's, n contiguous), all
// ROWS-row tiles, B_j at b_tile + j * b_stride bytes (j < NBW: A's fragments are loaded and
// split once for NBW blocks); the warp's tile starts at column m0 of A and n0 of each B_j.
// k order 2t, 2t + 1. The products of S consecutive 8-deep steps are summed in one fresh tile
// (tf32x3.cuh mma_3xtf32_split; S = 1: one FADD per 8 terms). CLAMP: split_tf32's.
template <int MI, int NI, int NBW, int KD, int ROWS, int S = 1, bool CLAMP = (TF32_CLAMP != 0)>
__device__ __forceinline__ void mma_tn_3xtf32(float (&acc)[NBW][MI][NI][4], unsigned a_tile, int m0,
                                              unsigned b_tile, unsigned b_stride, int n0, int lane) {
    static_assert(KD % (8 * S) == 0, "whole groups of S 8-deep steps");
    const int g = lane >> 2, t2 = (lane & 3) * 2;
#pragma unroll
    for (int k0 = 0; k0 < KD; k0 += 8 * S) {
        unsigned a[S][MI][4], ah[S][MI][4], al[S][MI][4];
#pragma unroll
        for (int s = 0; s < S; ++s) {
            const int k = k0 + 8 * s;
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) ld_a_kpairs<ROWS>(a[s][mi], a_tile, k + t2, m0 + mi * 16 + g);
        }
        split_all<S * MI * 4, CLAMP>(&a[0][0][0], &ah[0][0][0], &al[0][0][0]);
#pragma unroll
        for (int j = 0; j < NBW; ++j) {
            unsigned b[S][NI][2], bh[S][NI][2], bl[S][NI][2];
#pragma unroll
            for (int s = 0; s < S; ++s) {
                const int k = k0 + 8 * s;
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    b[s][ni][0] = lds32(b_tile + j * b_stride + f32_off<ROWS>(k + t2, n0 + ni * 8 + g));
                    b[s][ni][1] = lds32(b_tile + j * b_stride + f32_off<ROWS>(k + t2 + 1, n0 + ni * 8 + g));
                }
            }
            split_all<S * NI * 2, CLAMP>(&b[0][0][0], &bh[0][0][0], &bl[0][0][0]);
            mma_3xtf32_split<S, MI, NI>(acc[j], ah, al, bh, bl);
        }
    }
}

// Four rows of four float32 at src_at(i), i < 4 (16 bytes each), split into TF32 hi and lo
// and stored transposed: column j's four hi parts at hi_at(j), its lo parts at lo_at(j).
template <class S, class H, class L>
__device__ __forceinline__ void split_4x4_transposed(S src_at, H hi_at, L lo_at) {
    unsigned v[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v[i][0]), "=r"(v[i][1]), "=r"(v[i][2]), "=r"(v[i][3]) : "r"(src_at(i)) : "memory");
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const unsigned c[4] = {v[0][j], v[1][j], v[2][j], v[3][j]};
        unsigned h[4], l[4];
        split_all<4>(c, h, l);
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};"
                     :: "r"(hi_at(j)), "r"(h[0]), "r"(h[1]), "r"(h[2]), "r"(h[3]) : "memory");
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};"
                     :: "r"(lo_at(j)), "r"(l[0]), "r"(l[1]), "r"(l[2]), "r"(l[3]) : "memory");
    }
}

// wgmma's B operand from a stored block (dsd_stream.cu WGMMA, float32): the BS x BS tile at
// `src`, whose rows are k (TRANS 0, x @ W) or n (TRANS 1, x @ W^T), split into its TF32 hi and
// lo parts at `hi` and `lo` as K-major tiles (rows n, k contiguous; the same sub-tiles and
// swizzle, f32_off<BS>). TRANS 1 is elementwise, 16 bytes a thread at a time; TRANS 0
// transposes 4 x 4 elements a thread at a time. NT threads, this one tid; the caller orders it
// with the tile's arrival and with the MMAs that read hi and lo.
template <int TRANS, int NT>
__device__ __forceinline__ void split_b_kmajor(unsigned src, unsigned hi, unsigned lo, int tid) {
    if (TRANS) {
        split_smem_to(src, hi, lo, BS * BS * 4, tid, NT);
    } else {
        constexpr int NB = BS / 4;
#pragma unroll 1
        for (int q = tid; q < NB * NB; q += NT) {
            const int k0 = (q / NB) * 4, n0 = (q % NB) * 4;
            split_4x4_transposed([&](int i) { return src + f32_off<BS>(k0 + i, n0); },
                                 [&](int j) { return hi + f32_off<BS>(n0 + j, k0); },
                                 [&](int j) { return lo + f32_off<BS>(n0 + j, k0); });
        }
    }
}

// wgmma's B operand from float32 tiles whose rows are the reduction index (sddmm_tall.cu
// WGMMA: dy's column blocks, KD = 16 rows of BS = 64 columns, f32_off<KD>), split into TF32 hi
// and lo and written K-major: tile b at src + b * src_stride becomes the plane at
// dst + b * dst_stride of BS rows (n) of 128 bytes (f32_off, the 128-byte swizzle), hi at k
// positions 0 .. 15 and lo at 16 .. 31. The k order is the one mma_tn_3xtf32's A loads take
// (physical rows 2t, 2t + 1 as k t, t + 4): tile row 8h + 2i + r0 goes to k position
// 8h + 4 r0 + i. A task is 4 x 4 elements: rows 8h + r0 + {0, 2, 4, 6}, columns n0 .. n0 + 3,
// (h, r0) in the task index's low bits so the eight lanes of a 16-byte store phase hit eight
// different chunks. NT threads, this one tid, `ntiles` tiles; the caller orders it with the
// tiles' arrival and the MMAs that read the planes.
template <int KD, int NT>
__device__ __forceinline__ void split_rows_kmajor(unsigned src, unsigned src_stride, unsigned dst,
                                                  unsigned dst_stride, int ntiles, int tid) {
    static_assert(KD == 16 && BS == 64 && RB == 128, "split_rows_kmajor: 16 rows of 64 columns");
#pragma unroll 1
    for (int q = tid; q < ntiles * 64; q += NT) {
        const int b = q >> 6, h = (q >> 1) & 1, r0 = q & 1, n0 = ((q >> 2) & 15) * 4;
        const unsigned s = src + b * src_stride, d = dst + b * dst_stride;
        const int p = 8 * h + 4 * r0;
        split_4x4_transposed([&](int i) { return s + f32_off<KD>(8 * h + r0 + 2 * i, n0); },
                             [&](int j) { return d + f32_off<BS>(n0 + j, p); },
                             [&](int j) { return d + f32_off<BS>(n0 + j, KD + p); });
    }
}
