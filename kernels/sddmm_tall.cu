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
// Grid: segments; block: (NB / BPW * WARPS_M * WARPS_N + 1) warps.
// MCH 1 (float32 on the mma.sync consumers; the default, _specs.SDDMM_MERGE_CHUNKS):
// grid (segments, chunks), CTA (i, k) reducing rows k * mch_rows .. of M only (mch_rows a
// multiple of BK), all of M's row chunks in one launch in chunk-major order instead of one
// launch a chunk. Chunk k > 0 adds into the blocks (beta 1) once chunk k - 1 of its segment has
// stored them: flags[i] counts the segment's chunks stored (an acquire load spun on by one
// thread; a release store after the CTA's stores and a fence), and the last chunk sets it
// back to 0 for the next launch. Chunk k - 1's CTA comes gridDim.x earlier in the grid; with
// CTAs dispatched in linear order (an assumption, not a CUDA guarantee, which CUTLASS's serial
// split-K makes too) it is resident or done when chunk k waits. Two launches must not share
// the flags at once (the host keeps them per stream). The sums are those of one launch a
// chunk, bit for bit.
// TSPLIT 1 (16-bit on the mma.sync consumers; _specs.tall_tail_split's rule, opt-in until
// timed): the segments of a last wave that would leave most SMs idle come split along M, so a
// lone CTA's latency-bound pass over all M rows (about 0.4-0.8 us a step, docs/perf-notes.md
// v59) does not set the kernel's end. seg[i].w = -1 for a whole segment, else its slot s in
// the workspace: piece s % tsplit of tsplit, rows (s % tsplit) * tsplit_rows .. of M
// (tsplit_rows a multiple of BK, every piece non-empty). Each piece writes its float32 sums
// to ws through common.cuh's split_combine; the last of a segment's pieces to finish (a
// counter a segment, counters[s / tsplit], left 0) adds them in piece order and stores the
// blocks, so the result does not depend on which piece ends last.
// float32 warps may each take BPW blocks (consecutive in the segment), whose products share
// the x fragments, loaded and split once (tf32x3.cuh's mma_tn_3xtf32).
//
// WGMMA 1 with float32 (bs 64, sm_90a only, wgmma.cuh; the specs' choice there where wgmma is
// on, _specs.F32_TALL_WGMMA): one consumer warpgroup takes the segment's NB = BPW = 2 blocks
// with wgmma m64n64k8 .tf32, x^T's fragments from registers and dy's blocks split into K-major
// hi / lo planes in shared memory (tf32x3_tiles.cuh split_rows_kmajor); see the consumer's
// comment (docs/perf-notes.md v25: M = 4096 1.48 -> 1.13 ms).
// WGMMA 1 with 16-bit elements (bs 64, sm_90a; the default where wgmma is on, _specs.TALL_WGMMA16):
// one consumer warpgroup for BPW blocks (WARPS_M 4, WARPS_N 1; _specs takes BPW 2 with NB 8,
// or BPW 1 with NB 4 or 2 where the segment-size rule does), wgmma m64n64k16 with both
// operands from the swizzled tiles; WG_EAGER as dsd_stream.cu's (docs/perf-notes.md v36: M =
// 4096 0.175 -> 0.161 ms; v42, NB 8 BPW 2: 0.161 -> 0.138 ms).
//
// Parameters (#defines, _specs.sddmm_tall_spec's): DTYPE_ID (1, 2: bs 32, 64; 4: bs 16, 32,
// 64), BS, NB, BK (16, 32 or 64), STAGES, WARPS_M, WARPS_N, X_HINT, D_HINT (L2 policies,
// common.cuh's l2_policy), BPW (blocks a float32 warp, or a 16-bit wgmma warpgroup; 1 unless
// set: the specs set 2 for float32 bs 16, float32 bs 64 on wgmma and 16-bit bs 64 at NB 8),
// KSUM (float32 on the mma.sync consumers: 8 unless set, 16 or 32, at most BK; the reduction
// depth summed in one fresh tile, as dsd_stream.cu's; the specs set 16 at bs 32), WGMMA (0
// unless set; the specs set 1 on sm_90a where wgmma is asked for, for float32 BS 64 with NB
// 2, BPW 2, BK 16, WARPS_M 4, WARPS_N 1, and for 16-bit BS 64: above), WG_EAGER (the 16-bit
// wgmma consumers; see theirs), MCH (0 unless set; the specs set 1 where float32 wgrad runs
// in row chunks: above), TSPLIT (0 unless set: above), TF32_REDO (below), TIMELINE (0, the default;
// n > 0, probes/p23.py, p25.py: timeline.cuh's per-step stamps of the first n CTAs; events 0-2
// the producer's acquire begun and done and its copies issued, 3 consumer thread 0's wait on
// `full` done; float32 WGMMA: 4 the previous batch folded, 5 dy's split and the A loads done;
// mma.sync: 4 thread 0's MMAs done, 5 the last consumer warp's release).
// TF32_REDO (0 unless set; the specs set 1, since v52, for float32 on the mma.sync consumers): the
// consumers' sums first with split_tf32's clamp left out (tf32x3.cuh TF32_CLAMP; a sum that no
// infinite, NaN or near-FLT_MAX input enters is the clamped split's bit for bit, one that any
// enters is NaN); where a stored block's sum is NaN (barrier.red.or over the consumers and the
// producer warp) the producer copies the steps again and the consumers sum them with the clamp,
// the ring going on (uses nsteps .. 2 nsteps - 1). The blocks are the clamped kernel's for
// every input. (TIMELINE: a second pass stamps over its CTA's first.)
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
#ifndef WGMMA
#define WGMMA 0
#endif
#ifndef WG_EAGER
#define WG_EAGER 0
#endif
#ifndef MCH
#define MCH 0
#endif
#if MCH && (DTYPE_ID != 4 || WGMMA)
#error "sddmm_tall.cu: MCH (row chunks in one launch) is for float32 on the mma.sync consumers"
#endif
#ifndef TSPLIT
#define TSPLIT 0
#endif
#if TSPLIT && (DTYPE_ID == 4 || WGMMA)
#error "sddmm_tall.cu: TSPLIT (the last wave's segments split along M) is for 16-bit on the mma.sync consumers"
#endif
#ifndef TF32_REDO
#define TF32_REDO 0
#endif
#if TF32_REDO && (DTYPE_ID != 4 || WGMMA)
#error "sddmm_tall.cu: TF32_REDO is for float32 on the mma.sync consumers"
#endif
#define BAR_REDO 3                     // TF32_REDO's vote: the consumers and the producer warp
#define F32W (WGMMA && DTYPE_ID == 4)   // float32 wgmma consumers: dy's blocks as K-major planes
#define W16 (WGMMA && DTYPE_ID != 4)    // 16-bit wgmma consumers: a warpgroup for BPW blocks
#if W16 && (BS != 64 || WARPS_M != 4 || WARPS_N != 1 || (BPW != 1 && BPW != 2))
#error "sddmm_tall.cu's 16-bit wgmma consumers: BS 64, one warpgroup for BPW (1 or 2) blocks (WARPS_M 4, WARPS_N 1)"
#endif
#if F32W && BS != 64
#error "sddmm_tall.cu's float32 wgmma consumers take BS 64"
#endif
#if WGMMA
#include "wgmma.cuh"
#endif
#include "timeline.cuh"
#define WPB (WARPS_M * WARPS_N)        // consumer warps per BPW blocks
#define NC (NB / BPW * WPB)
#define NCT (NC * 32)
#if F32W
#define PL_BYTES (BS * RB)             // one block's plane (BS rows of 128 bytes)
#define PLANES_BYTES (NB * PL_BYTES)
#else
#define PLANES_BYTES 0
#endif
static_assert(T_BYTES % ATOM == 0, "tiles keep the swizzle alignment");
static_assert(NB % BPW == 0 && (BPW == 1 || DTYPE_ID == 4 || W16),
              "BPW: float32 or the 16-bit wgmma consumers, dividing NB");

// F32W: a register cap that fits more CTAs an SM. Registers are allotted per SM sub-partition
// (cuda_occupancy.h), 16384 each, in 256-register steps a warp: 168, two CTAs (10 warps) an
// SM, where at ptxas's own 200 a sub-partition held two warps, one CTA (docs/perf-notes.md
// v25: 1.32 -> 1.12 ms at M = 4096).
#if F32W
#define TALL_BOUNDS __maxnreg__(168)
#else
#define TALL_BOUNDS __launch_bounds__(NCT + 32)
#endif
extern "C" __global__ void TALL_BOUNDS
bsmm_sddmm_tall(const __grid_constant__ TensorMap tmap_x, const __grid_constant__ TensorMap tmap_dy,
                const int4* __restrict__ seg, const int* __restrict__ cols,
                elem_t* __restrict__ out, int M, float alpha, float beta
#if MCH
                , int* __restrict__ flags, int mch_rows
#endif
#if TSPLIT
                , float* __restrict__ ws, int* __restrict__ counters, int tsplit, int tsplit_rows
#endif
                )
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // STAGES buffers from the first ATOM-aligned address, (F32W) the planes (PLANES_BYTES), then
    // full[STAGES], empty[STAGES] and (TSPLIT) one int, split_combine's flag.
    const unsigned raw = smem_u32(smem_raw);
    const unsigned t0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned pl0 = t0 + STAGES * S_BYTES;
    const unsigned bar0 = pl0 + PLANES_BYTES;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 sg = __ldg(seg + blockIdx.x);
    const int c = sg.x, first = sg.y, count = sg.z;
#if MCH
    const int row0 = blockIdx.y * mch_rows;            // this CTA's chunk of M's rows
    const int nsteps = (min(mch_rows, M - row0) + BK - 1) / BK;
#elif TSPLIT
    const int slot = sg.w;                             // -1: the whole segment
    const int row0 = slot >= 0 ? slot % tsplit * tsplit_rows : 0;
    const int nsteps = ((slot >= 0 ? min(tsplit_rows, M - row0) : M) + BK - 1) / BK;
#else
    const int row0 = 0;
    const int nsteps = (M + BK - 1) / BK;
#endif

    Ring<STAGES>::init(bar0, tid, NCT);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    if (tid == 0) TL_SPAN(0, 0);

    if (warp == NC) {
        // ------------------------------------------------------------ producer (one lane)
        if (lane == 0) {
            const unsigned long long x_hint = l2_policy<X_HINT>(), d_hint = l2_policy<D_HINT>();
            int kc[NB];
#pragma unroll
            for (int b = 0; b < NB; ++b) kc[b] = b < count ? __ldg(cols + first + b) * BS : 0;
            Ring<STAGES> ring(bar0);
            // the steps, as ring uses use0 .. use0 + nsteps - 1
            auto produce = [&](int use0) {
                for (int step = 0; step < nsteps; ++step, ring.advance()) {
                    TL_MARK(step, 0);
                    const unsigned full = ring.acquire(use0 + step, (1 + count) * T_BYTES);
                    TL_MARK(step, 1);
                    const unsigned buf = t0 + ring.s * S_BYTES;
#pragma unroll
                    for (int h = 0; h < NH; ++h) {
                        tma_2d(buf + h * (BK * RB), &tmap_x, c * BS + h * HC, row0 + step * BK, full, x_hint);
#pragma unroll
                        for (int b = 0; b < NB; ++b)
                            if (b < count)
                                tma_2d(buf + (1 + b) * T_BYTES + h * (BK * RB), &tmap_dy, kc[b] + h * HC,
                                       row0 + step * BK, full, d_hint);
                    }
                    TL_MARK(step, 2);
                }
            };
            produce(0);
#if TF32_REDO
            // the consumers' vote (every lane of this warp votes no: lanes 1-31 below)
            if (any_of_threads<BAR_REDO>(false, NCT + 32)) produce(nsteps);
#endif
        }
#if TF32_REDO
        else any_of_threads<BAR_REDO>(false, NCT + 32);
#endif
        return;
    }

#if F32W
    // ----------------------------- consumer warpgroup (float32: 3xTF32 on wgmma, sm_90a)
    // One warpgroup for the NB blocks, BS 64, 16 rows of M a step. D = x^T dy: A (x^T, 64 x 16)
    // from registers, loaded as mma_tn_3xtf32's A fragments (physical rows 2t, 2t + 1 as k t,
    // t + 4; warp w rows 16w ..) and split there; B (dy's blocks) split into hi and lo planes,
    // K-major in that k order (split_rows_kmajor). A step: wait for the previous step's batch
    // and add its fresh tiles to the accumulators; split dy's tiles into the planes; load and
    // split A; release the ring buffer (the batch reads registers and planes only); one batch
    // of 6 wgmma m64n64k8 a block, its 16 deep summed in a fresh tile in tf32x3.cuh's order
    // (lo * hi, hi * lo, then hi * hi: a chain of 6 truncating adds, KSUM 16's), added with
    // rounding FADDs at the next step. The batch runs while the other CTA of the SM splits: the
    // wait comes first so that the split's temporaries never share the registers with a batch's
    // fresh tiles and A fragments (168 registers, TALL_BOUNDS; v25: with the split overlapping
    // the batch in two plane sets, 200 registers and one CTA an SM, 1.32 against 1.12 ms).
    static_assert(NC == 4 && BS == 64 && BK == 16 && RB == 128, "float32 wgmma: one warpgroup, BS 64, BK 16");
    float acc[NB][1][8][4], fr[NB][32];
    unsigned ah[2][4], al[2][4];
    zero_fill<NB * 32>(&acc[0][0][0][0]);
    // Wait for the batch in flight (its A fragments and fresh tiles stay in their registers until
    // then) and, if there was one, add its fresh tiles to the accumulators.
    auto fold = [&](bool pend) {
        wgmma_wait<0>();
        wgmma_pin<NB * 32>(&fr[0][0]);
        wgmma_pin_a<8>(&ah[0][0]);
        wgmma_pin_a<8>(&al[0][0]);
        if (pend) {
#pragma unroll
            for (int b = 0; b < NB; ++b)
                if (b < count)
#pragma unroll
                    for (int i = 0; i < 32; ++i) (&acc[b][0][0][0])[i] += fr[b][i];
        }
    };
    const int g = lane >> 2, t2 = (lane & 3) * 2, c0 = warp * 16 + g;
    Ring<STAGES> ring(bar0);
    for (int step = 0; step < nsteps; ++step, ring.advance()) {
        ring.wait_full();
        if (tid == 0) TL_MARK(step, 3);
        const unsigned buf = t0 + ring.s * S_BYTES;
        fold(step > 0);
        if (tid == 0) TL_MARK(step, 4);
        split_rows_kmajor<BK, NCT>(buf + T_BYTES, T_BYTES, pl0, PL_BYTES, count, tid);
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
            unsigned a[4];
            ld_a_kpairs<BK>(a, buf, 8 * kk + t2, c0);
            split_all<4>(a, ah[kk], al[kk]);
        }
        if (tid == 0) TL_MARK(step, 5);
        ring.release();                // fence.proxy.async: the plane writes reach the wgmma too
        sync_threads_of<2>(NCT);
        wgmma_pin<NB * 32>(&fr[0][0]);
        wgmma_fence();
#pragma unroll
        for (int b = 0; b < NB; ++b) {
            if (b < count) {
                // k positions: hi 0 .. 15 (+32 bytes a k8 step), lo 16 .. 31 (+64 bytes)
                const unsigned p = pl0 + b * PL_BYTES;
                wgmma_3xtf32_k16<BS>(fr[b], ah, al,
                                     [&](int k, bool lo) { return wgmma_desc(p + 32 * k + (lo ? 64 : 0)); });
            }
        }
        wgmma_commit();
        wgmma_pin<NB * 32>(&fr[0][0]);
    }
    fold(nsteps > 0);
    if (tid == 0) TL_SPAN(1, nsteps);
#pragma unroll
    for (int b = 0; b < NB; ++b)
        if (b < count)
            store_tiles<1, 8>(out + (long long)(first + b) * (BS * BS), BS, acc[b], warp * 16, 0, BS, alpha, beta,
                              lane);
#elif W16
    // ----------------------- consumer warpgroups (16-bit wgmma, sm_90a), one for BPW blocks
    // Warpgroup g takes blocks g * BPW .. g * BPW + BPW - 1 of the segment (BPW 2: a segment of
    // NB 8 on four warpgroups, so an SM holds eight blocks' sums at once and the wgrad's
    // segments take fewer waves, each re-reading dy from HBM; docs/perf-notes.md v41), each
    // D (64 x 64) += x^T dy over BK / 16 wgmma
    // m64n64k16 a step, straight from the swizzled tiles as sddmm_stream.cu's (x's tile
    // M-major, flag tnspA: rows are the reduction, BS columns contiguous; dy's MN-major,
    // tnspB). Every warpgroup issues its batch, one past count too (its dy slot holds stale
    // bytes; the product is not stored), so no branch sits around the wgmma. WG_EAGER (1, the
    // specs' choice: a stage is released at once, when its own batch completed; 0, unless set,
    // and TALL_WGMMA16_VARIANTS' for the probes: once the next stage's batch is issued and its
    // own completed).
    constexpr int NI = BS / 8, ACC_N = NI * 4;
    static_assert(STAGES >= 2 || WG_EAGER, "a stage is held until the next batch is issued");
    const int blk = (warp >> 2) * BPW, wq = warp & 3;
    float acc[BPW][NI][4];
    zero_fill<BPW * ACC_N>(&acc[0][0][0]);
    Ring<STAGES> ring(bar0);
#if !WG_EAGER
    int held = -1;                     // the stage whose batch may still be running
#endif
    for (int step = 0; step < nsteps; ++step, ring.advance()) {
        ring.wait_full();
        if (tid == 0) TL_MARK(step, 3);
        const unsigned buf = t0 + ring.s * S_BYTES;
        wgmma_pin<BPW * ACC_N>(&acc[0][0][0]);
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < BPW; ++j) {       // the blocks share x's tile (the A operand)
            const unsigned dt = buf + (1 + blk + j) * T_BYTES;
#pragma unroll
            for (int k = 0; k < BK; k += 16)  // k16 = 16 rows of either tile
                wgmma_m64k16<BS, 1, 1>(&acc[j][0][0], wgmma_desc(buf + k * RB), wgmma_desc(dt + k * RB));
        }
        wgmma_commit();
        wgmma_pin<BPW * ACC_N>(&acc[0][0][0]);
#if WG_EAGER
        wgmma_wait<0>();
        wgmma_pin<BPW * ACC_N>(&acc[0][0][0]);
        if (tid == 0) TL_MARK(step, 4);
        ring.release();
#else
        wgmma_wait<1>();
        wgmma_pin<BPW * ACC_N>(&acc[0][0][0]);
        if (held >= 0) release_to_tma(bar0 + 8 * (STAGES + held));
        held = ring.s;
#endif
        if (tid == NCT - 32) TL_MARK(step, 5);
    }
    wgmma_wait<0>();
    wgmma_pin<BPW * ACC_N>(&acc[0][0][0]);
    if (tid == 0) TL_SPAN(1, nsteps);
#pragma unroll
    for (int j = 0; j < BPW; ++j)
        if (blk + j < count)
            store_tiles<1, NI>(out + (long long)(first + blk + j) * (BS * BS), BS,
                               reinterpret_cast<const float (&)[1][NI][4]>(acc[j]), wq * 16, 0, BS,
                               alpha, beta, lane);
#else
    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BS / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 rows, pairs of n8 columns");
    const int blk = warp / WPB * BPW, wm = warp % WPB % WARPS_M, wn = warp % WPB / WARPS_M;
    const bool active = blk < count;   // warps of missing blocks still release every buffer
    float acc[BPW][MI][NI][4];         // a block past count (BPW > 1) is computed, not stored
    Ring<STAGES> ring(bar0);
    // the steps' sums into acc (clamp, a constant at each call: split_tf32's, float32)
    auto consume = [&](const bool clamp) {
        zero_fill<BPW * MI * NI * 4>(&acc[0][0][0][0]);
        for (int step = 0; step < nsteps; ++step, ring.advance()) {
            ring.wait_full();
            if (tid == 0) TL_MARK(step, 3);
            const unsigned buf = t0 + ring.s * S_BYTES;
#if DTYPE_ID == 4
            if (active) {
                const unsigned dt = buf + (1 + blk) * T_BYTES;
                if (clamp)
                    mma_tn_3xtf32<MI, NI, BPW, BK, BK, KSUM / 8, true>(acc, buf, wm * WM, dt, T_BYTES, wn * WN, lane);
                else
                    mma_tn_3xtf32<MI, NI, BPW, BK, BK, KSUM / 8, false>(acc, buf, wm * WM, dt, T_BYTES, wn * WN, lane);
            }
#else
            if (active) mma_tn_swizzled<MI, NI, BK>(acc[0], buf, wm * WM, buf + (1 + blk) * T_BYTES, wn * WN, lane);
#endif
            if (tid == 0) TL_MARK(step, 4);
            ring.release();
            if (tid == NCT - 32) TL_MARK(step, 5);   // the last consumer warp's release
        }
    };
#if TF32_REDO
    consume(false);
    bool bad = false;                  // a stored block's sum is NaN (blocks past count: stale dy)
#pragma unroll
    for (int j = 0; j < BPW; ++j)
        if (blk + j < count) bad |= any_nan<MI * NI * 4>(&acc[j][0][0][0]);
    if (any_of_threads<BAR_REDO>(bad, NCT + 32)) consume(true);
#else
    consume(TF32_CLAMP != 0);
#endif
    if (tid == 0) TL_SPAN(1, nsteps);
#if MCH
    // chunk k > 0: wait for chunk k - 1 of this segment to have stored, then add into it
    if (blockIdx.y > 0) {
        if (tid == 0)
            while (ld_acquire_gpu(flags + blockIdx.x) != (int)blockIdx.y) __nanosleep(64);
        sync_threads_of<1>(NCT);
    }
    const float beta_k = blockIdx.y > 0 ? 1.f : beta;
#else
    const float beta_k = beta;
#endif
#if TSPLIT
    // a piece: its sums through the workspace; only the segment's last piece to finish stores
    // (the flag after the barriers and mbarriers: one int past empty[STAGES])
    int& is_last = *reinterpret_cast<int*>(smem_raw + (bar0 - raw) + 16 * STAGES);
    if (slot >= 0 && !split_combine<BPW * MI * NI * 4, NCT, 1>(
                         &acc[0][0][0][0], ws, slot, make_int2(slot - slot % tsplit, tsplit),
                         counters + slot / tsplit, is_last))
        return;
#endif
#pragma unroll
    for (int j = 0; j < BPW; ++j)
        if (blk + j < count)
            store_tiles<MI, NI>(out + (long long)(first + blk + j) * (BS * BS), BS, acc[j], wm * WM,
                                wn * WN, BS, alpha, beta_k, lane);
#if MCH
    __threadfence();                   // the stores, seen GPU-wide before the flag
    sync_threads_of<1>(NCT);
    if (tid == 0)
        st_release_gpu(flags + blockIdx.x, blockIdx.y + 1 == gridDim.y ? 0 : (int)blockIdx.y + 1);
#endif
#endif
}
#undef F32W
#undef W16
#undef PLANES_BYTES
