// dsd_grouped_tma.cu: dense x block-sparse -> dense for small blocks (16-bit BS 8 and 16,
// float32 BS 8 as 3xTF32), walking groups of output block-columns; warp-specialised, TMA
// copies (sm_90).
//
//     y = alpha * x @ op(W) + beta * y        op(W) = W (TRANS_W 0) or W^T (TRANS_W 1)
//
// Same operands, tables and contract as dsd_grouped.cu (read its header): a CTA owns R
// neighbouring output block-columns (a group) and BM rows, and walks the steps of one item; a
// step is a slab of x (BM rows, at most KW columns) shared by every stored block of the group
// that falls in it. dsd_grouped.cu moves slabs and blocks with 16-byte cp.async copies, which
// measured a ceiling of about 2.7 TB/s (docs/perf-notes.md, v5). Here:
//   - the producer (the last warp) copies a step's slab as up to KW / BOXC TMA boxes of
//     BM x BOXC (128-byte rows, BOXC = 64 16-bit or 32 float32 columns, with the 128-byte
//     swizzle; rows past M and columns past K_in read as zero)
//     and its stored blocks into a ring of STAGES buffers (tma.cuh Ring). The blocks (WCP 0) go
//     as 1-D bulk copies, one per run of blocks that lie next to each other in W's storage (in
//     x @ W a block-row's blocks in the group's columns do; in x @ W^T, whose steps list their
//     entries column by column, a row of W's blocks in the slab does, mostly one to three
//     blocks, and the TMA unit's cost per copy shows), or (WCP 1) as 16-byte cp.async copies,
//     a block per W_BLK / 16 lanes (16-bit BS 8: 8; float32: 16), which every lane hands to
//     `full` with
//     cp.async.mbarrier.arrive.noinc (docs/perf-notes.md, v12: bs 8 x @ W^T). Its lanes write
//     the step's entry codes into the buffer's meta area, each after its own wait on the
//     `empty` barrier and before its own arrival on `full` (count 32, or 64 with the cp.async
//     arrivals; lane 0's arrival posts the TMA copies' bytes, which then complete it);
//   - WARPS_M x WARPS_N consumer warps multiply as dsd_grouped.cu's do (each scans the codes
//     for the blocks of its own RW columns) and release the buffer on its `empty` barrier.
//     float32 (DTYPE_ID 4): A's fragments by ldmatrix (an 8 x 8 16-bit matrix is 8 rows of four
//     float32), B's by 32-bit loads, both split and multiplied as tf32x3.cuh's 3xTF32.
// Stored blocks land unpadded (BS * BS * ESZ bytes each; a bulk copy cannot pad): an 8-row
// ldmatrix of a 16-bit BS 16 block, and float32 x @ W^T's B loads, meet 2-way bank conflicts,
// a small part of the shared-memory reads.
//
// Tensor map (cupy_bsparse/_tensor_maps.py): tmap_x over x as (M rows, K_in columns), box
// (BM, BOXC). w: the stored blocks, 16-byte aligned.
// Grid: (items, ceil(M / BM)); block: (WARPS_M * WARPS_N + PW) warps.
// Parameters (#defines): DTYPE_ID (1 or 2; 4 with BS 8), BS (8 or 16), TRANS_W, BM, R, KW (a
// multiple of BOXC), CAP, STAGES, WARPS_M, WARPS_N, X_HINT and W_HINT (L2 policies, common.cuh's
// l2_policy; W_HINT applies to bulk copies only), PF (steps of table prefetch), MIN_CTAS
// (resident CTAs per SM the registers are capped for), WCP (0, the template's default: bulk
// copies of the stored blocks; 1: cp.async; the specs take 1 for bs 8 x @ W^T, and up to
// M = 64 the launcher picks 16-bit bs 8's by the layout's plan, below), PW (1 or 2 producer
// warps, the last PW warps, each copying the blocks of an equal share of a step's entries, a
// run cut at a share's start; the first also writes the codes and copies the x boxes; every
// lane of each arrives on `full`; the template's default is 1, the specs take 2 for 16-bit
// bs 8 and 1 elsewhere: docs/perf-notes.md v21-v23, the 16-bit step at M = 64 was its one
// producer's copy issue), UCOL (0 or 1: the consumers' slab column unsigned, fewer address
// instructions a block; the template's default is 0, the specs take 1 for 16-bit and 0 for
// float32: v22, v23), TIMELINE (0, the default; n > 0: timeline.cuh's per-step timestamps of
// the first n CTAs, events 0-2 the producer's wait on `empty` begun and done and its copies
// issued, 3-4 consumer warp 0's wait on `full` done and its release, 5 the last consumer
// warp's release), XLO (float32 only; 0, the template's default: every block splits its x
// fragments in registers; 1: x arrives split (split_tf32.cu): tmap_x is x's hi plane, tmap_xlo
// its lo plane, whose boxes the producer copies into a lo plane per stage, at the slab's
// offsets; the consumers load both and split nothing of x; the launcher takes 1, the "pass"
// of `_specs.f32_split`, v21, unless F32_SPLIT forces otherwise or that spec does not fit the
// GPU).
//
// The launcher uses it for 16-bit above M = 16: bs 16 with bulk copies; bs 8 with bulk copies
// for x @ W and cp.async for x @ W^T above M = 64, and up to it by the layout's plan (bulk from
// 2.4 blocks a copy, v19; v7 had measured bs 8 slower than dsd_grouped.cu on the H100, when
// x @ W^T copied its single 128-byte blocks one bulk copy each), and for float32 bs 8 above
// M = 16 too (v16).
#define RB 128                         // bytes of one slab box row
#include "common.cuh"
#include "tma.cuh"
#include "timeline.cuh"

#if DTYPE_ID != 1 && DTYPE_ID != 2 && DTYPE_ID != 4
#error "dsd_grouped_tma.cu runs 16-bit tensor-core types (DTYPE_ID 1, 2) and 3xTF32 (4)"
#endif
#if BS != 8 && BS != 16
#error "dsd_grouped_tma.cu serves block sizes 8 and 16"
#endif
#if DTYPE_ID == 4
#if BS != 8
#error "dsd_grouped_tma.cu serves float32 (3xTF32) at block size 8 only"
#endif
#include "tf32x3_tiles.cuh"
#endif

#define ESZ ((int)sizeof(elem_t))
#define BOXC (RB / ESZ)                // x columns per box
#define ATOM 1024                      // the 128-byte swizzle repeats every 8 rows
#define A_BOX (BM * RB)
#define A_STAGE ((KW / BOXC) * A_BOX)
#define W_BLK (BS * BS * ESZ)
#define B_STAGE (CAP * W_BLK)
#define META_STAGE (CAP + 4)           // ints: [0] = entry count, [1 + q] = entry q's code
#define NC (WARPS_M * WARPS_N)         // consumer warps
#define NCT (NC * 32)
#define RW (R / WARPS_N)               // output block-columns per warp
#define EPL ((CAP + 31) / 32)          // entries per producer lane and step
#ifndef WCP
#define WCP 0
#endif
#ifndef PW
#define PW 1
#endif
#if PW < 1 || PW > 2
#error "dsd_grouped_tma.cu: PW producer warps, 1 or 2 (more spill at two CTAs an SM)"
#endif
#ifndef UCOL
#define UCOL 0
#endif
#ifndef XLO
#define XLO 0
#endif
#if XLO && DTYPE_ID != 4
#error "dsd_grouped_tma.cu takes x split ahead (XLO) for float32 (DTYPE_ID 4) only"
#endif
#define LO_STAGES (XLO ? STAGES : 0)   // lo planes in shared memory

extern "C" __global__ void __launch_bounds__(NCT + 32 * PW, MIN_CTAS)
bsmm_dsd_grouped_tma(const __grid_constant__ TensorMap tmap_x,
#if XLO
                     const __grid_constant__ TensorMap tmap_xlo,
#endif
                     const elem_t* __restrict__ w,
                     const int4* __restrict__ item, const int2* __restrict__ ginfo,
                     const int4* __restrict__ step, const int2* __restrict__ gent,
                     float* __restrict__ ws, int* __restrict__ counters,
                     elem_t* __restrict__ y, long long ldy, int M, int ncols, float alpha, float beta)
{
    static_assert(KW % BOXC == 0 && R % WARPS_N == 0 && BM % (16 * WARPS_M) == 0, "tile shape");
    static_assert(A_BOX % ATOM == 0 && CAP % 4 == 0, "alignment of boxes and barriers");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // From the first ATOM-aligned address (the launcher adds ATOM bytes of slack): STAGES slabs,
    // LO_STAGES lo planes (A_STAGE bytes each, ATOM-aligned after the slabs), STAGES block
    // areas, STAGES meta areas, full[STAGES], empty[STAGES], one int (split_combine's flag).
    const unsigned raw = smem_u32(smem_raw);
    const unsigned a0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned lo0 = a0 + STAGES * A_STAGE;
    const unsigned b0 = lo0 + LO_STAGES * A_STAGE;
    const unsigned m0s = b0 + STAGES * B_STAGE;
    const unsigned bar0 = m0s + STAGES * META_STAGE * 4;
    int* const metas = reinterpret_cast<int*>(smem_raw + (m0s - raw));
    int& is_last = *reinterpret_cast<int*>(smem_raw + (bar0 - raw) + 16 * STAGES);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 it = __ldg(item + blockIdx.x);
    const int s0 = it.y, nsteps = it.z - it.y;
    const int m0 = blockIdx.y * BM;

    // full: every producer lane arrives (and, with WCP, once more when its cp.async copies land);
    // empty: every consumer thread
    Ring<STAGES>::init(bar0, tid, NCT, (WCP ? 64 : 32) * PW);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    if (tid == 0) TL_SPAN(0, nsteps);

#if PW > 1
    if (warp >= NC) {
        const int pw = warp - NC;       // this warp copies the blocks of entries [q_lo, q_hi)
#else
    if (warp == NC) {
        constexpr int pw = 0;
#endif
        // ------------------------------------------------------------ producer warp
        // Lane l handles entries l, l + 32, ... of a step. When step k is issued the warp
        // holds the records of steps k .. k + 2 PF - 1 (rq) and the entries of steps
        // k .. k + PF - 1 (eq): every table load has PF steps of pipeline time before it is
        // used (with PF 1 one memory latency per step set the pace: docs/perf-notes.md, v7).
        const unsigned long long x_hint = l2_policy<X_HINT>(), w_hint = l2_policy<W_HINT>();
        auto rec = [&](int k) { return k < nsteps ? __ldg(step + s0 + k) : make_int4(0, 0, 0, 0); };
        auto entries = [&](int2 (&dst)[EPL], int4 r) {
#pragma unroll
            for (int p = 0; p < EPL; ++p) {
                const int e = r.y + p * 32 + lane;
                dst[p] = e < r.z ? __ldg(gent + e) : make_int2(-1, 0);
            }
        };
        int4 rq[2 * PF];
        int2 eq[PF][EPL];
#pragma unroll
        for (int i = 0; i < 2 * PF; ++i) rq[i] = rec(i);
#pragma unroll
        for (int i = 0; i < PF; ++i) entries(eq[i], rq[i]);
        Ring<STAGES> ring(bar0);
        for (int k = 0; k < nsteps; ++k, ring.advance()) {
            const int4 cur = rq[0];
            const int n = cur.z - cur.y;
            if (lane == 0 && pw == 0) TL_MARK(k, 0);
            // every lane: its code writes follow the consumers' release
            ring.wait_empty(k);
            if (lane == 0 && pw == 0) TL_MARK(k, 1);
            int* meta = metas + ring.s * META_STAGE;
            if (pw == 0) {   // the codes: the first producer warp
#pragma unroll
                for (int p = 0; p < EPL; ++p)
                    if (p * 32 + lane < n) meta[1 + p * 32 + lane] = eq[0][p].y;
                if (lane == 0) meta[0] = n;
            }
#if PW > 1
            // this warp's share of the step's blocks: entries [q_lo, q_hi), a run cut at q_lo
            const int q_lo = n * pw / PW, q_hi = n * (pw + 1) / PW;
#define IN_SHARE(q) ((q) >= q_lo && (q) < q_hi)
#define RUN_FIRST(q) ((q) == q_lo || lane == 0)
#define SHARE_PASS(p, BPI) (max(0, q_lo - (p) * 32) / (BPI) * (BPI))   // first cp.async pass
#else
            constexpr int q_lo = 0;
            const int q_hi = n;
#define IN_SHARE(q) ((q) < n)
#define RUN_FIRST(q) (lane == 0)
#define SHARE_PASS(p, BPI) 0
#endif
            // Every lane arrives after its code writes (lane 0 with the expected bytes: the first
            // warp's boxes and each warp's own blocks). With PW > 1 a warp's copies may land
            // before another warp posts its bytes: the transaction count then dips below zero
            // (PTX allows it +-(2^20 - 1)), and the phase cannot complete while that warp's
            // arrivals are outstanding.
            const unsigned full = ring.full();
            if (lane != 0) {
                mbar_arrive(full);
            } else {
                const int nbox = (cur.w + BOXC - 1) / BOXC;
                mbar_arrive_expect_tx(full, (pw == 0 ? (1 + XLO) * nbox * A_BOX : 0)
                                                + (WCP ? 0 : (q_hi - q_lo) * W_BLK));
#pragma unroll
                for (int b = 0; b < KW / BOXC; ++b)
                    if (pw == 0 && b < nbox) {
                        tma_2d(a0 + ring.s * A_STAGE + b * A_BOX, &tmap_x, cur.x + b * BOXC, m0,
                               full, x_hint);
#if XLO
                        tma_2d(lo0 + ring.s * A_STAGE + b * A_BOX, &tmap_xlo, cur.x + b * BOXC, m0,
                               full, x_hint);
#endif
                    }
            }
#if WCP
            // 16-byte cp.async copies: lanes sub * CPB .. sub * CPB + CPB - 1 copy one block; entry
            // q's block index comes from lane q % 32 of eq[0][q / 32]
            {
                const unsigned wdst = b0 + ring.s * B_STAGE;
                constexpr int CPB = W_BLK / 16, BPI = 32 / CPB;   // 16-byte pieces a block, blocks a pass
                const int sub = lane / CPB, piece = lane % CPB;
#pragma unroll
                for (int p = 0; p < EPL; ++p) {
                    for (int q0 = SHARE_PASS(p, BPI); q0 < 32 && p * 32 + q0 < q_hi; q0 += BPI) {
                        const int b = __shfl_sync(0xffffffffu, eq[0][p].x, q0 + sub);
                        const int q = p * 32 + q0 + sub;
                        if (IN_SHARE(q))
                            cp_async16_s(wdst + q * W_BLK + piece * 16,
                                         w + (long long)b * (BS * BS) + piece * (16 / ESZ), 16);
                    }
                }
                asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" :: "r"(full) : "memory");
            }
#else
            __syncwarp();   // the expected bytes are posted before a block copy completes
            // one 1-D bulk copy per run of consecutive stored blocks (within 32 entries)
            const unsigned wdst = b0 + ring.s * B_STAGE;
#pragma unroll
            for (int p = 0; p < EPL; ++p) {
                const int q = p * 32 + lane;
                const int b = eq[0][p].x;
                const int prev = __shfl_up_sync(0xffffffffu, b, 1);
                const bool start = IN_SHARE(q) && (RUN_FIRST(q) || b != prev + 1);
                const unsigned starts = __ballot_sync(0xffffffffu, start);
                if (start) {
                    const unsigned later = starts & ~((2u << lane) - 1u);
                    const int end = later ? __ffs(later) - 1 : min(32, q_hi - p * 32);
                    bulk_1d(wdst + q * W_BLK, w + (long long)b * (BS * BS),
                            (end - lane) * W_BLK, full, w_hint);
                }
            }
#endif
#undef IN_SHARE
#undef RUN_FIRST
#undef SHARE_PASS
            if (lane == 0 && pw == 0) TL_MARK(k, 2);
#pragma unroll
            for (int i = 0; i + 1 < 2 * PF; ++i) rq[i] = rq[i + 1];
            rq[2 * PF - 1] = rec(k + 2 * PF);
#pragma unroll
            for (int i = 0; i + 1 < PF; ++i)
#pragma unroll
                for (int p = 0; p < EPL; ++p) eq[i][p] = eq[i + 1][p];
            entries(eq[PF - 1], rq[PF - 1]);
        }
        return;
    }

    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BM / WARPS_M, MI = WM / 16, NI = BS / 8;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    float acc[RW][MI][NI][4];
    zero_fill<RW * MI * NI * 4>(&acc[0][0][0][0]);
#if DTYPE_ID == 4
    // A by ldmatrix: the lane's slab row wm*WM + mi*16 + (lane & 15), 16-byte chunk (four
    // float32) 2 c + (lane >> 4) of the block's first chunk pair c; the row is congruent to the
    // lane mod 8 and the chunk 2 c is even, so the half-select folds into the XOR. B by 32-bit
    // loads: b0 = B(k t, n g), b1 = B(k t + 4, n g) of the unpadded BS x BS block (op(W) = W:
    // W[k][n]; W^T: W[n][k]).
    const int g = lane >> 2, t = lane & 3;
    const unsigned a_lane = (wm * WM + (lane & 15)) * RB;
    const unsigned a_sw = (lane & 7) ^ (lane >> 4);
    const unsigned b_lane = (TRANS_W ? g * BS + t : t * BS + g) * 4;
    constexpr unsigned B_K4 = (TRANS_W ? 4 : 4 * BS) * 4;    // bytes from k t to k t + 4
#else
    // The lane's slab row (BS 16: wm*WM + (lane & 15), chunk + (lane >> 4); BS 8: wm*WM + lane)
    // is congruent to lane mod 8, so one XOR swizzles every chunk it reads; BS 16's half-select
    // folds into it because its block chunks are even.
    const unsigned a_lane = (wm * WM + (BS == 8 ? lane : (lane & 15))) * RB;
    const unsigned a_sw = BS == 8 ? (lane & 7) : ((lane & 7) ^ (lane >> 4));
    const unsigned b_lane = small_block_b_lane<BS, (bool)TRANS_W>(lane, BS) * 2;
#endif
    Ring<STAGES> ring(bar0);
    for (int k = 0; k < nsteps; ++k, ring.advance()) {
        ring.wait_full();
        if (tid == 0) TL_MARK(k, 3);
        const int* meta = metas + ring.s * META_STAGE;
        const int n = meta[0];
        const unsigned as = a0 + ring.s * A_STAGE + a_lane, bs = b0 + ring.s * B_STAGE + b_lane;
        for_each_owned_entry<RW>(meta, n, wn * RW, lane, [&](int q, int cl, int e) {
#if UCOL
            const unsigned col = (unsigned)cl * BS;   // codes are never negative: no sign fix-ups
#else
            const int col = cl * BS;
#endif
#if DTYPE_ID == 4
            const unsigned a = as + (col / BOXC) * A_BOX + ((((col % BOXC) / 4) ^ a_sw) << 4);
#if XLO
            // hi from the stage, lo from its lo plane at the same offset; only B is split here
            unsigned ah[1][MI][4], al[1][MI][4], bf[2], bh[1][1][2], bl[1][1][2];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) {
                ldsm_x4(ah[0][mi], a + mi * 16 * RB);
                ldsm_x4(al[0][mi], a + STAGES * A_STAGE + mi * 16 * RB);   // the stage's lo plane
            }
            bf[0] = lds32(bs + e * W_BLK);
            bf[1] = lds32(bs + e * W_BLK + B_K4);
            split_all<2>(bf, &bh[0][0][0], &bl[0][0][0]);
            mma_3xtf32_split<1, MI, 1>(acc[q], ah, al, bh, bl);
#else
            unsigned af[MI][4], bf[1][2];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) ldsm_x4(af[mi], a + mi * 16 * RB);
            bf[0][0] = lds32(bs + e * W_BLK);
            bf[0][1] = lds32(bs + e * W_BLK + B_K4);
            mma_3xtf32<MI, 1>(acc[q], af, bf);
#endif
#else
            const unsigned a = as + (col / BOXC) * A_BOX + ((((col % BOXC) / 8) ^ a_sw) << 4);
            small_block_mma<BS, (bool)TRANS_W, RB>(acc[q], a, bs + e * W_BLK);
#endif
        });
        if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(k, warp == 0 ? 4 : 5);
        ring.release();
    }
    if (tid == 0) TL_SPAN(1, nsteps);

    // the item again: keeping its group and slot live through the loop cost the TRANS_W 1
    // specialisations 12 spilled registers at the 96 that two CTAs per SM allow
    int grp, slot;
    asm volatile("ld.global.nc.v4.s32 {%0, _, _, %1}, [%2];" : "=r"(grp), "=r"(slot) : "l"(item + blockIdx.x));
    constexpr int ACC_N = RW * MI * NI * 4;
    if (slot >= 0 && !split_combine<ACC_N, NCT, 1>(&acc[0][0][0][0], ws, slot, ginfo[grp],
                                                   counters + (long long)grp * gridDim.y + blockIdx.y,
                                                   is_last))
        return;
    store_group_tiles<BS>(y + (long long)m0 * ldy, ldy, acc, grp * R + wn * RW, ncols, wm * WM,
                          min(BM, M - m0), alpha, beta, lane);
}
