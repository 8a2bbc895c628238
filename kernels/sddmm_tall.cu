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
// Grid: (segments); block: (NB * WARPS_M * WARPS_N + 1) warps.
// Parameters (#defines): DTYPE_ID (1 or 2), BS (32, 64), NB, BK (16, 32 or 64), STAGES,
// WARPS_M, WARPS_N, X_HINT, D_HINT (L2 policies, tma.cuh's l2_policy).
#define RB (BS * 2)                    // bytes of one tile row
#include "common.cuh"
#include "tma.cuh"

#if DTYPE_ID != 1 && DTYPE_ID != 2
#error "sddmm_tall.cu runs 16-bit tensor-core types only (DTYPE_ID 1, 2)"
#endif

#define ATOM (8 * RB)
#define T_BYTES (BK * RB)              // one x or dy tile
#define S_BYTES ((1 + NB) * T_BYTES)   // one ring buffer: the x tile, then NB dy tiles
#define WPB (WARPS_M * WARPS_N)        // consumer warps per block
#define NC (NB * WPB)
#define NCT (NC * 32)
static_assert(T_BYTES % ATOM == 0, "tiles keep the swizzle alignment");

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
                tma_2d(buf, &tmap_x, c * BS, step * BK, full, x_hint);
#pragma unroll
                for (int b = 0; b < NB; ++b)
                    if (b < count) tma_2d(buf + (1 + b) * T_BYTES, &tmap_dy, kc[b], step * BK, full, d_hint);
            }
        }
        return;
    }

    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BS / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 rows, pairs of n8 columns");
    const int blk = warp / WPB, wm = warp % WPB % WARPS_M, wn = warp % WPB / WARPS_M;
    const bool active = blk < count;   // warps of a missing block still release every buffer
    float acc[MI][NI][4];
    zero_fill<MI * NI * 4>(&acc[0][0][0]);
    Ring<STAGES> ring(bar0);
    for (int step = 0; step < nsteps; ++step, ring.advance()) {
        ring.wait_full();
        const unsigned buf = t0 + ring.s * S_BYTES;
        if (active) mma_tn_swizzled<MI, NI, BK>(acc, buf, wm * WM, buf + (1 + blk) * T_BYTES, wn * WN, lane);
        ring.release();
    }
    if (active)
        store_tiles<MI, NI>(out + (long long)(first + blk) * (BS * BS), BS, acc, wm * WM, wn * WN, BS,
                            alpha, beta, lane);
}
