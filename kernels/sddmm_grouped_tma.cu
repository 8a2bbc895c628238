// sddmm_grouped_tma.cu: sampled dense-dense product on groups of block-columns, for 16-bit
// BS 16, and BS 8 in PAIRS (16-bit, or float32 as 3xTF32); warp-specialised, TMA copies (sm_90).
//
//     out[b] = alpha * x[:, c*BS:(c+1)*BS]^T @ dy[:, k*BS:(k+1)*BS] + beta * out[b]
//
// Same operands, tables and contract as sddmm_grouped.cu (read its header): a CTA (an item)
// owns up to NBLK stored blocks in R neighbouring block-columns (a group) and at most NCX
// block-rows, and every pipeline step of MK rows of M loads the group's dense dy slab and the
// item's x column blocks once. sddmm_grouped.cu copies them with 16-byte cp.async, the path
// that measured a ceiling of about 2.7-3.9 TB/s (docs/perf-notes.md, v5 and v8). Here:
//   - the producer (the last warp) copies a step's dy slab as boxes of MK x DBOXC columns
//     (128-byte rows, 128-byte swizzle; DBOXC = 64 16-bit or 32 float32 columns) and each x
//     column block as a box of MK x BS columns (BS * ESZ-byte rows: 16 bytes unswizzled, or 32
//     with the 32-byte swizzle): lane l the x block of slot l and, for l < NDBOX, dy box l.
//     Rows past M and columns past the operands' widths read as zero. Every lane
//     waits on the buffer's `empty` barrier, posts its own bytes on `full` (count 32) and
//     issues its copies into a ring of STAGES buffers (tma.cuh Ring);
//   - NW consumer warps take the item's blocks as sddmm_grouped.cu's do (block q: warp
//     q % NW, accumulator q / NW), multiply from the swizzled boxes and release the buffer.
//     PAIRS (BS 8): as sddmm_grouped.cu's, a unit of two blocks of one column fills the two
//     8-row halves of one m16 tile. float32 takes its fragments by 32-bit loads, k rows
//     p(t) = 2t + ((t ^ t >> 1) & 1) and p(t) ^ 1 of each 8 (the mma's k order is free as long
//     as A and B share it): their residues mod 4 and their halves mod 8 all differ, so neither
//     the 32-byte x rows nor the 128-byte dy rows meet bank conflicts.
//
// Tensor maps (cupy_bsparse/_tensor_maps.py): tmap_x over x (M rows, its columns), box
// (MK, BS); tmap_dy over dy (M rows, K columns), box (MK, DBOXC).
// Grid: (items,); block: NW + 1 warps.
// Parameters (#defines): DTYPE_ID (1 or 2; 4 with BS 8), BS (16; 8 with PAIRS 1), R (a multiple
// of 4), NCX (at most 32), NBLK (units with PAIRS), MK (a multiple of 16), STAGES, NW, MIN_CTAS,
// X_HINT and D_HINT (L2 policies, common.cuh's l2_policy), PAIRS.
#define RB 128                          // bytes of one dy box row (tma.cuh's SWZ)
#include "common.cuh"
#include "tma.cuh"

#ifndef PAIRS
#define PAIRS 0
#endif
#if defined(SOFF) && SOFF
#error "sddmm_grouped_tma.cu reads the unit table's codes as slots (SOFF is sddmm_grouped.cu's)"
#endif
#if DTYPE_ID != 1 && DTYPE_ID != 2 && DTYPE_ID != 4
#error "sddmm_grouped_tma.cu runs 16-bit tensor-core types (DTYPE_ID 1, 2) and 3xTF32 (4)"
#endif
#if !((BS == 16 && !PAIRS && DTYPE_ID != 4) || (BS == 8 && PAIRS))
#error "sddmm_grouped_tma.cu serves 16-bit block size 16, and block size 8 in PAIRS"
#endif
#if DTYPE_ID == 4
#include "tf32x3_tiles.cuh"
#endif

#define ESZ ((int)sizeof(elem_t))
#define DBOXC (RB / ESZ)                // dy columns per box
#define NDBOX (R * BS / DBOXC)          // dy boxes per step
#define D_BOX (MK * RB)
#define X_RB (BS * ESZ)                 // bytes of an x box row: 16, or 32 (32-byte swizzle)
#define X_BOX (MK * X_RB)
#define STAGE_BYTES (NDBOX * D_BOX + NCX * X_BOX)
#if PAIRS
typedef int4 code_t;                    // (block, code, partner block or -1, partner code)
#else
typedef int2 code_t;
#endif
#define ATOM 1024                       // the 128-byte swizzle repeats every 8 rows
#define NCT (NW * 32)
#define SLOTS (NBLK / NW)

extern "C" __global__ void __launch_bounds__(NCT + 32, MIN_CTAS)
bsmm_sddmm_grouped_tma(const __grid_constant__ TensorMap tmap_x,
                       const __grid_constant__ TensorMap tmap_dy,
                       const int4* __restrict__ item, const code_t* __restrict__ gent,
                       const int* __restrict__ crow, elem_t* __restrict__ out, int M, int K,
                       float alpha, float beta)
{
    static_assert(R % 4 == 0 && NCX <= 32 && NDBOX <= 32 && NDBOX * DBOXC == R * BS,
                  "one box per producer lane");
    static_assert(MK % 16 == 0 && NBLK % NW == 0 && X_BOX % 128 == 0, "tile shape");
    static_assert(D_BOX % ATOM == 0 && STAGE_BYTES % ATOM == 0, "box alignment");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // From the first ATOM-aligned address (the launcher adds ATOM bytes of slack): STAGES
    // buffers (NDBOX dy boxes, then NCX x boxes), the item's codes, full[STAGES], empty[STAGES].
    const unsigned raw = smem_u32(smem_raw);
    const unsigned s0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned codes_s = s0 + STAGES * STAGE_BYTES;
    const unsigned bar0 = codes_s + NBLK * (int)sizeof(code_t);
    code_t* const codes = reinterpret_cast<code_t*>(smem_raw + (codes_s - raw));
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 it = __ldg(item + blockIdx.x);
    const int grp = it.x, e0 = it.y, nblk = it.z - it.y, ncx = it.w;
    const int nsteps = (M + MK - 1) / MK;
    for (int q = tid; q < nblk; q += NCT + 32) codes[q] = __ldg(gent + e0 + q);

    Ring<STAGES>::init(bar0, tid, NCT, 32);   // full: every producer lane arrives
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();

    if (warp == NW) {
        // ------------------------------------------------------------ producer warp
        const unsigned long long x_hint = l2_policy<X_HINT>(), d_hint = l2_policy<D_HINT>();
        const int xcol = lane < ncx ? __ldg(crow + (long long)blockIdx.x * NCX + lane) * BS : -1;
        const int dcol = grp * R * BS + lane * DBOXC;
        const bool dbox = lane < NDBOX && dcol < K;
        const unsigned bytes = (xcol >= 0 ? X_BOX : 0) + (dbox ? D_BOX : 0);
        Ring<STAGES> ring(bar0);
        for (int k = 0; k < nsteps; ++k, ring.advance()) {
            ring.wait_empty(k);
            const unsigned full = ring.full(), buf = s0 + ring.s * STAGE_BYTES;
            mbar_arrive_expect_tx(full, bytes);
            if (dbox) tma_2d(buf + lane * D_BOX, &tmap_dy, dcol, k * MK, full, d_hint);
            if (xcol >= 0) tma_2d(buf + NDBOX * D_BOX + lane * X_BOX, &tmap_x, xcol, k * MK, full, x_hint);
        }
        return;
    }

    // ---------------------------------------------------------------- consumer warps
#if PAIRS
    // Unit q: block codes[q].x times x slot s1 (rows 0-7 of the m16 tile), its partner
    // codes[q].z (or -1) times slot s2 (rows 8-15; s1 again without a partner: computed, not
    // stored), both with dy column block jl of the group.
#if DTYPE_ID == 4
    // A(m, k) = x box element (k, m): byte k * 32 + ((m / 4 ^ (k / 4) % 2) << 4) + m % 4 * 4
    // (32-byte swizzle); B(k, n) = dy box element (k, c), c = jl % 4 * 8 + n: byte k * 128 +
    // ((c / 4 ^ k % 8) << 4) + c % 4 * 4. Steps start at multiples of 8 rows, so the swizzle
    // terms depend on the lane's rows p0, p1 only.
    const int g = lane >> 2, t = lane & 3;
    const int p0 = 2 * t + ((t ^ (t >> 1)) & 1), p1 = p0 ^ 1;
    const unsigned xa0 = p0 * X_RB + (((g >> 2) ^ ((p0 >> 2) & 1)) << 4) + (g & 3) * 4;
    const unsigned xa1 = p1 * X_RB + (((g >> 2) ^ ((p1 >> 2) & 1)) << 4) + (g & 3) * 4;
#else
    // A by ldmatrix.trans from the slot boxes (16-byte rows, unswizzled): rows k + (lane & 7) +
    // (lane >> 4) * 8 of slot s1 (lanes with bit 3 clear) or s2; B from dy rows k + (lane & 7) +
    // ((lane >> 3) & 1) * 8, chunk jl % 8 of its box, XOR the row mod 8 (k is a multiple of 16).
    const unsigned a_lane = ((lane & 7) + (lane >> 4) * 8) * X_RB;
    const unsigned b_row = ((lane & 7) + ((lane >> 3) & 1) * 8) * RB;
    const unsigned b_sw = lane & 7;
#endif
    float acc[SLOTS][1][1][4];
    zero_fill<SLOTS * 4>(&acc[0][0][0][0]);
    Ring<STAGES> ring(bar0);
    for (int k = 0; k < nsteps; ++k, ring.advance()) {
        ring.wait_full();
        const unsigned buf = s0 + ring.s * STAGE_BYTES, xb = buf + NDBOX * D_BOX;
#pragma unroll
        for (int s = 0; s < SLOTS; ++s) {
            const int q = s * NW + warp;
            if (q < nblk) {
                const int4 u = codes[q];
                const int s1 = u.y >> 16, s2 = u.z >= 0 ? (u.w >> 16) : s1, jl = u.y & 0xffff;
#if DTYPE_ID == 4
                const unsigned x1 = xb + s1 * X_BOX, x2 = xb + s2 * X_BOX;
                const int c = (jl % 4) * 8 + g;
                const unsigned db = buf + (jl / 4) * D_BOX + (c & 3) * 4;
                const unsigned b0o = p0 * RB + (((c >> 2) ^ p0) << 4);
                const unsigned b1o = p1 * RB + (((c >> 2) ^ p1) << 4);
#pragma unroll
                for (int kk = 0; kk < MK; kk += 8) {
                    const unsigned xk = kk * X_RB, dk = db + kk * RB;
                    const unsigned af[1][4] = {{lds32(x1 + xk + xa0), lds32(x2 + xk + xa0),
                                                lds32(x1 + xk + xa1), lds32(x2 + xk + xa1)}};
                    const unsigned bf[1][2] = {{lds32(dk + b0o), lds32(dk + b1o)}};
                    mma_3xtf32<1, 1>(acc[s], af, bf);
                }
#else
                const unsigned a = xb + (((lane >> 3) & 1) ? s2 : s1) * X_BOX + a_lane;
                const unsigned b = buf + (jl / 8) * D_BOX + b_row
                                   + (((unsigned)(jl % 8) ^ b_sw) << 4);
#pragma unroll
                for (int kk = 0; kk < MK; kk += 16) {
                    unsigned af[4], bf[2];
                    ldsm_x4_t(af, a + kk * X_RB);
                    ldsm_x2_t(bf, b + kk * RB);
                    mma(acc[s][0][0], af, bf);
                }
#endif
            }
        }
        ring.release();
    }

#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
        const int q = s * NW + warp;
        if (q < nblk) {   // the tile's rows 0-7 to the unit's block, rows 8-15 to its partner
            store_tiles<1, 1>(out + (long long)codes[q].x * (BS * BS), BS, acc[s], 0, 0, BS,
                              alpha, beta, lane);
            if (codes[q].z >= 0)
                store_pair(out + (long long)codes[q].z * (BS * BS) + (lane >> 2) * BS
                               + (lane & 3) * 2, acc[s][0][0][2], acc[s][0][0][3], alpha, beta);
        }
    }
#else
    // Fragment rows: A (x box, rows = M) k + (lane & 7) + (lane >> 4) * 8, 16-byte chunk
    // (lane >> 3) & 1; B (dy box) k + (lane & 7) + ((lane >> 3) & 1) * 8, chunk of the block's
    // columns + (lane >> 4). k is a multiple of 16, so the swizzles are per-lane constants: the
    // 32-byte swizzle flips the chunk on rows 4-7 of every 8, the 128-byte one XORs row mod 8.
    const unsigned a_lane = ((lane & 7) + (lane >> 4) * 8) * (BS * 2)
                            + ((((lane >> 3) & 1) ^ ((lane >> 2) & 1)) << 4);
    const unsigned b_row = ((lane & 7) + ((lane >> 3) & 1) * 8) * RB;
    const unsigned b_sw = lane & 7, b_hi = lane >> 4;
    float acc[SLOTS][1][2][4];
    zero_fill<SLOTS * 2 * 4>(&acc[0][0][0][0]);
    Ring<STAGES> ring(bar0);
    for (int k = 0; k < nsteps; ++k, ring.advance()) {
        ring.wait_full();
        const unsigned buf = s0 + ring.s * STAGE_BYTES;
#pragma unroll
        for (int s = 0; s < SLOTS; ++s) {
            const int q = s * NW + warp;
            if (q < nblk) {
                const int code = codes[q].y, jl = code & 0xffff;
                const unsigned a = buf + NDBOX * D_BOX + (code >> 16) * X_BOX + a_lane;
                const unsigned b = buf + (jl / 4) * D_BOX + b_row
                                   + (((unsigned)((jl % 4) * 2 + b_hi) ^ b_sw) << 4);
#pragma unroll
                for (int kk = 0; kk < MK; kk += 16) {
                    unsigned af[4], bf[4];
                    ldsm_x4_t(af, a + kk * (BS * 2));
                    ldsm_x4_t(bf, b + kk * RB);
                    mma(acc[s][0][0], af, bf);
                    mma(acc[s][0][1], af, bf + 2);
                }
            }
        }
        ring.release();
    }

#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
        const int q = s * NW + warp;
        if (q < nblk)   // one block, row-major BS x BS
            store_tiles<1, 2>(out + (long long)codes[q].x * (BS * BS), BS, acc[s], 0, 0, BS,
                              alpha, beta, lane);
    }
#endif
}
