// sddmm_stream.cu: sampled dense-dense product for small M, warp-specialised, TMA copies.
//
//     out[b] = alpha * x[:, c*BS:(c+1)*BS]^T @ dy[:, k*BS:(k+1)*BS] + beta * out[b]
//
// Same contract and work list as sddmm.cu (read its header): segment seg[i] = (c, first,
// count) holds blocks first .. first + count - 1 of block-row c, cols[b] their block-columns.
// For M <= BK the whole reduction is one step per block, so a segment is a stream of dy tiles
// against one x tile:
//   - the producer (the last warp, one lane) copies x's column block c (BK x BS) once, then
//     each block's dy column block (BK x BS) into a ring of STAGES buffers, with TMA tile
//     copies (rows past M zero-filled by the TMA unit; tma.cuh);
//   - WARPS_M x WARPS_N consumer warps compute the BS x BS block x_c^T dy_k (ldmatrix.trans for
//     both operands) and release the buffer. With beta == 0 they write the block, swizzled,
//     into one of two shared staging tiles and one thread stores it with a TMA tile store
//     (stores from registers, 4 bytes per lane, made bs 64 slower than sddmm.cu); with
//     beta != 0 each thread reads, scales and stores its own elements.
// x and dy tiles are read by many blocks, so both are copied with an L2 evict_last policy.
//
// Tensor maps: tmap_x over x as (M rows, R columns), tmap_dy over dy as (M, C); box (BK, BS);
// tmap_out over out as (nnzb * BS rows, BS columns), box (BS, BS).
// float32 (DTYPE_ID 4, 3xTF32, tf32x3.cuh): tiles land as sub-tiles of RB = min(4 * BS, 128)
// bytes a row (one TMA copy each; the maps' boxes are RB / 4 columns wide), fragments come by
// 32-bit loads, and every thread stores its own elements (8 bytes per lane; no staging tiles).
//
// WGMMA 1 (16-bit bs 64, sm_90a only, wgmma.cuh): the four consumer warps are one warpgroup
// that computes the 64 x 64 block with BK / 16 wgmma.mma_async m64n64k16 straight from the
// swizzled tiles (x's tile M-major, flag tnspA: rows are the reduction, BS columns contiguous;
// dy's MN-major, tnspB), and waits for them before it releases the dy buffer. Warp w of the
// group holds rows 16 w .. 16 w + 15 in mma.sync's accumulator order, so the stores are as
// WARPS_M 4 x WARPS_N 1 mma.sync's.
//
// Grid: (segments); block: (WARPS_M * WARPS_N + 1) warps.
// Parameters (#defines): DTYPE_ID (1, 2: bs 32, 64; 4: bs 16, 32, 64), BS, BK (16, 32, 64: at
// least M), STAGES, WARPS_M, WARPS_N; WGMMA (0, the default, or 1: 16-bit bs 64 with WARPS_M 4,
// WARPS_N 1).
// tma_tiles.cuh: RB, ATOM, NH, HC, and common.cuh, tma.cuh, tf32x3.cuh (float32)
#include "tma_tiles.cuh"
#ifndef WGMMA
#define WGMMA 0
#endif
#if WGMMA
#include "wgmma.cuh"
#endif

#define T_BYTES (BK * BS * (int)sizeof(elem_t))   // one x or dy tile
#if DTYPE_ID == 4
#define O_BYTES 0                      // no staging: threads store float32 pairs themselves
#else
#define O_BYTES (BS * RB)              // one output staging tile
#endif
#define NC (WARPS_M * WARPS_N)
#define NCT (NC * 32)
static_assert(T_BYTES % ATOM == 0 && O_BYTES % ATOM == 0, "tiles keep the swizzle alignment");

extern "C" __global__ void __launch_bounds__(NCT + 32)
bsmm_sddmm_stream(const __grid_constant__ TensorMap tmap_x, const __grid_constant__ TensorMap tmap_dy,
                  const __grid_constant__ TensorMap tmap_out, const int4* __restrict__ seg, const int* __restrict__ cols,
                  elem_t* __restrict__ out, int M, float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // The x tile, STAGES dy tiles, two output staging tiles, then full[STAGES], empty[STAGES]
    // and the x tile's barrier.
    const unsigned raw = smem_u32(smem_raw);
    const unsigned x0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned d0 = x0 + T_BYTES;
    const unsigned o0 = d0 + STAGES * T_BYTES;
    const unsigned bar0 = o0 + 2 * O_BYTES;
    const unsigned xbar = bar0 + 16 * STAGES;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 sg = __ldg(seg + blockIdx.x);
    const int c = sg.x, first = sg.y, nsteps = sg.z;

    Ring<STAGES>::init(bar0, tid, NCT);
    if (tid == 0) mbar_init(xbar, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();

    if (warp == NC) {
        // ------------------------------------------------------------ producer (one lane)
        if (lane == 0) {
            const unsigned long long evict_last = l2_policy<1>();
            mbar_arrive_expect_tx(xbar, T_BYTES);
#pragma unroll
            for (int h = 0; h < NH; ++h) tma_2d(x0 + h * (BK * RB), &tmap_x, c * BS + h * HC, 0, xbar, evict_last);
            Ring<STAGES> ring(bar0);
            int k = nsteps > 0 ? __ldg(cols + first) : 0;
            for (int step = 0; step < nsteps; ++step, ring.advance()) {
                const int cur = k;
                if (step + 1 < nsteps) k = __ldg(cols + first + step + 1);
                const unsigned full = ring.acquire(step, T_BYTES);
#pragma unroll
                for (int h = 0; h < NH; ++h)
                    tma_2d(d0 + ring.s * T_BYTES + h * (BK * RB), &tmap_dy, cur * BS + h * HC, 0, full, evict_last);
            }
        }
        return;
    }

    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BS / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 rows, pairs of n8 columns");
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    const int gr = lane >> 2, tc = (lane & 3) * 2;
    // Staging writes: lane (gr, tc/2) writes 4 bytes at row base + gr (+ 8), column chunk q,
    // byte 2 * tc of it; the chunk XOR is SWZ(gr), so the 32 lanes hit 32 banks.
    const unsigned o_lane = gr * RB + 2 * tc, swo = SWZ(gr);
    const bool staged = DTYPE_ID != 4 && beta == 0.f;
    mbar_wait(xbar, 0);
    Ring<STAGES> ring(bar0);
    for (int step = 0; step < nsteps; ++step) {
        float acc[MI][NI][4];
        zero_fill<MI * NI * 4>(&acc[0][0][0]);
        ring.wait_full();
#if DTYPE_ID == 4
        mma_tn_3xtf32<MI, NI, 1, BK, BK>(reinterpret_cast<float (&)[1][MI][NI][4]>(acc), x0, wm * WM,
                                         d0 + ring.s * T_BYTES, 0, wn * WN, lane);
#elif WGMMA
        static_assert(BS == 64 && WARPS_M == 4 && WARPS_N == 1, "wgmma: one warpgroup, bs 64");
        wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < BK; k += 16)      // k16 = 16 rows of either tile (both MN-major)
            wgmma_m64k16<BS, 1, 1>(&acc[0][0][0], wgmma_desc(x0 + k * RB),
                                   wgmma_desc(d0 + ring.s * T_BYTES + k * RB));
        wgmma_commit();
        wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
        wgmma_wait<0>();                       // the buffer is read before it is released
        wgmma_pin<MI * NI * 4>(&acc[0][0][0]);
#else
        mma_tn_swizzled<MI, NI, BK>(acc, x0, wm * WM, d0 + ring.s * T_BYTES, wn * WN, lane);
#endif
        ring.release();
        ring.advance();

#if DTYPE_ID != 4
        if (staged) {
            const unsigned ot = o0 + (step & 1) * O_BYTES;
            if (tid == 0) bulk_wait_read<1>();     // the store from this tile two blocks ago
            sync_threads_of<1>(NCT);
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) {
                const unsigned row = (wm * WM + mi * 16) * RB;
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const unsigned q = (((wn * WN) / 8 + ni) ^ swo) << 4;
                    const unsigned lo = pack2(alpha * acc[mi][ni][0], alpha * acc[mi][ni][1]);
                    const unsigned hi = pack2(alpha * acc[mi][ni][2], alpha * acc[mi][ni][3]);
                    asm volatile("st.shared.u32 [%0], %1;" :: "r"(ot + row + o_lane + q), "r"(lo) : "memory");
                    asm volatile("st.shared.u32 [%0], %1;" :: "r"(ot + row + 8 * RB + o_lane + q), "r"(hi) : "memory");
                }
            }
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");   // visible to the TMA
            sync_threads_of<1>(NCT);
            if (tid == 0) {
                tma_store_2d(&tmap_out, 0, (first + step) * BS, ot);
                bulk_commit();
            }
            continue;
        }
#endif
        store_tiles<MI, NI>(out + (long long)(first + step) * (BS * BS), BS, acc, wm * WM, wn * WN, BS,
                            alpha, beta, lane);
    }
    if (staged && tid == 0) bulk_wait<0>();        // the staging tiles outlive the last store
}
