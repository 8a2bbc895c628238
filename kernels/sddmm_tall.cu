// sddmm_tall.cu: sampled dense-dense product for large M, warp-specialised, TMA copies.
//
//     out[b] = alpha * x[:, c*BS:(c+1)*BS]^T @ dy[:, k*BS:(k+1)*BS] + beta * out[b]
//
// Same contract and work list as sddmm.cu (read its header): segment seg[i] = (c, first,
// count <= NB) holds blocks first .. first + count - 1 of block-row c, cols[b] their
// block-columns. One CTA per segment reduces over all M rows, BK rows per step:
//   - the producer (the last warp, one lane) copies, per step, x's column block c and the
//     count dy column blocks (each BK x BS, rows past M zero-filled by the TMA unit) into one
//     buffer of a ring of STAGES (tma.cuh), so x's tile is read once for the segment's blocks;
//   - NB x WARPS_M x WARPS_N consumer warps: WARPS_M x WARPS_N warps per block tile its
//     BS x BS output, accumulate over every step, and store with store_tiles at the end (at
//     large M the stores are a small part of the traffic: one block per M / BK steps).
// sddmm_stream.cu serves M <= 64, where a block is one step and its stores dominate.
//
// Tensor maps: tmap_x over x as (M rows, R columns), tmap_dy over dy as (M, C); box (BK, BS).
// float32 (DTYPE_ID 4, 3xTF32, tf32x3.cuh): tiles land as sub-tiles of RB = min(4 * BS, 128)
// bytes a row, one TMA copy each (the maps' boxes are RB / 4 columns wide).
//
// Grid: (segments); block: (NB / BPW * WARPS_M * WARPS_N + 1) warps.
// float32 warps may each take BPW blocks (consecutive in the segment), whose products share
// the x fragments, loaded and split once (tf32x3.cuh's mma_tn_3xtf32).
//
// Parameters (#defines): DTYPE_ID (1, 2: bs 32, 64; 4: bs 16, 32, 64), BS, NB, BK (16, 32 or
// 64), STAGES, WARPS_M, WARPS_N, X_HINT, D_HINT (L2 policies, tma.cuh's l2_policy), BPW
// (float32 only; default 1), KSUM (float32 only: 8, the default, 16 or 32, at most BK; the
// reduction depth summed in one fresh tile, as dsd_stream.cu's).
// tma_tiles.cuh: RB, ATOM, NH, HC, and common.cuh, tma.cuh, tf32x3.cuh (float32)
#include "tma_tiles.cuh"

#define T_BYTES (BK * BS * (int)sizeof(elem_t))   // one x or dy tile
#define S_BYTES ((1 + NB) * T_BYTES)   // one ring buffer: the x tile, then NB dy tiles
#ifndef BPW
#define BPW 1                          // blocks per warp
#endif
#ifndef KSUM
#define KSUM 8
#endif
#define WPB (WARPS_M * WARPS_N)        // consumer warps per BPW blocks
#define NC (NB / BPW * WPB)
#define NCT (NC * 32)
static_assert(T_BYTES % ATOM == 0, "tiles keep the swizzle alignment");
static_assert(NB % BPW == 0 && (BPW == 1 || DTYPE_ID == 4), "BPW: float32, dividing NB");

extern "C" __global__ void __launch_bounds__(NCT + 32)
bsmm_sddmm_tall(const __grid_constant__ TensorMap tmap_x, const __grid_constant__ TensorMap tmap_dy,
                const int4* __restrict__ seg, const int* __restrict__ cols, elem_t* __restrict__ out,
                int M, float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // STAGES buffers from the first ATOM-aligned address, then full[STAGES], empty[STAGES].
    const unsigned raw = smem_u32(smem_raw);
    const unsigned t0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned bar0 = t0 + STAGES * S_BYTES;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 sg = __ldg(seg + blockIdx.x);
    const int c = sg.x, first = sg.y, count = sg.z;
    const int nsteps = (M + BK - 1) / BK;

    Ring<STAGES>::init(bar0, tid, NCT);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();

    if (warp == NC) {
        // ------------------------------------------------------------ producer (one lane)
        if (lane == 0) {
            const unsigned long long x_hint = l2_policy<X_HINT>(), d_hint = l2_policy<D_HINT>();
            int kc[NB];
#pragma unroll
            for (int b = 0; b < NB; ++b) kc[b] = b < count ? __ldg(cols + first + b) * BS : 0;
            Ring<STAGES> ring(bar0);
            for (int step = 0; step < nsteps; ++step, ring.advance()) {
                const unsigned full = ring.acquire(step, (1 + count) * T_BYTES);
                const unsigned buf = t0 + ring.s * S_BYTES;
#pragma unroll
                for (int h = 0; h < NH; ++h) {
                    tma_2d(buf + h * (BK * RB), &tmap_x, c * BS + h * HC, step * BK, full, x_hint);
#pragma unroll
                    for (int b = 0; b < NB; ++b)
                        if (b < count)
                            tma_2d(buf + (1 + b) * T_BYTES + h * (BK * RB), &tmap_dy, kc[b] + h * HC, step * BK,
                                   full, d_hint);
                }
            }
        }
        return;
    }

    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BS / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 rows, pairs of n8 columns");
    const int blk = warp / WPB * BPW, wm = warp % WPB % WARPS_M, wn = warp % WPB / WARPS_M;
    const bool active = blk < count;   // warps of missing blocks still release every buffer
    float acc[BPW][MI][NI][4];         // a block past count (BPW > 1) is computed, not stored
    zero_fill<BPW * MI * NI * 4>(&acc[0][0][0][0]);
    Ring<STAGES> ring(bar0);
    for (int step = 0; step < nsteps; ++step, ring.advance()) {
        ring.wait_full();
        const unsigned buf = t0 + ring.s * S_BYTES;
#if DTYPE_ID == 4
        if (active)
            mma_tn_3xtf32<MI, NI, BPW, BK, BK, KSUM / 8>(acc, buf, wm * WM, buf + (1 + blk) * T_BYTES, T_BYTES,
                                                         wn * WN, lane);
#else
        if (active) mma_tn_swizzled<MI, NI, BK>(acc[0], buf, wm * WM, buf + (1 + blk) * T_BYTES, wn * WN, lane);
#endif
        ring.release();
    }
#pragma unroll
    for (int j = 0; j < BPW; ++j)
        if (blk + j < count)
            store_tiles<MI, NI>(out + (long long)(first + blk + j) * (BS * BS), BS, acc[j], wm * WM, wn * WN,
                                BS, alpha, beta, lane);
}
