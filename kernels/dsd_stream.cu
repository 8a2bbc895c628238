// dsd_stream.cu: dense x block-sparse -> dense, warp-specialised, TMA copies (16-bit bs 32/64, float32 bs 16-64).
//
//     y = alpha * x @ op(W) + beta * y        op(W) = W (TRANS_W 0) or W^T (TRANS_W 1)
//
// Same look-up tables, work list and split-K contract as dsd.cu (read its header); x and the
// stored blocks arrive as tensor maps instead of pointers.
//
// At small M the product streams W from HBM and x's tiles from L2; at large M both come from L2
// (docs/perf-notes.md, v6: M = 4096 bs 64 at 7.4 TB/s of tiles). 16-byte cp.async copies
// (dsd.cu, and a cp.async version of this kernel) measured a ceiling of about 2.7 TB/s through
// the SMs for x and W together, whatever the pipeline depth or warp layout
// (docs/perf-notes.md, v5). Here each step is two TMA tile copies issued by one thread:
//   - the producer (the last warp, one lane) copies the step's x tile (BM x BS, rows past M
//     zero-filled by the TMA unit) and stored block (BS x BS) into a ring of STAGES buffers;
//     the copies complete the buffer's `full` mbarrier by their byte count;
//   - WARPS_M x WARPS_N consumer warps wait on `full`, multiply with ldmatrix + mma.sync, and
//     release the buffer on its `empty` mbarrier (every consumer thread arrives once).
// Tiles land with the TMA's RB-byte swizzle (RB = one tile row, 32, 64 or 128 bytes): 16-byte
// chunk q of row r sits at chunk q ^ SWZ(r), so the eight rows one ldmatrix reads hit distinct
// banks without padding.
//
// Tensor maps (built by cupy_bsparse/_tensor_maps.py): tmap_x over x as (M rows, K_in columns),
// box (BM, BS); tmap_w over the stored blocks as (nnzb * BS rows, BS columns), box (BS, BS).
//
// L2 hints (X_HINT, W_HINT; see l2_policy in common.cuh): at small M, x's tiles evict_last and the
// stored blocks, read once, evict_first, so the stream of W does not push x out of L2 (M = 64,
// bs 64: 0.0299 -> 0.0281 ms); at large M both evict_last (bs 32: 0.387 -> 0.286 ms). Y_HINT
// (common.cuh's st_y16): y's 16-byte stores evict_first on the item queue's sets (v38: 16-bit
// bs 64 at M = 4096 0.1388 -> 0.1322 ms), so y's stream does not push W and x out of L2.
//
// float32 (DTYPE_ID 4, 3xTF32 on TF32 tensor cores, tf32x3.cuh): tiles land as sub-tiles of
// RB = min(4 * BS, 128) bytes a row, one TMA copy each (bs 64 takes two per tile; the tensor
// maps' boxes are RB / 4 columns wide). x's fragments come by ldmatrix, W's by 32-bit loads for
// x @ W (2-way bank conflicts) and ldmatrix for x @ W^T.
//
// WGMMA 1 (16-bit, sm_90a only, wgmma.cuh): the consumers are WARPS_M / 4 warpgroups that
// multiply with wgmma.mma_async straight from the swizzled tiles (x's K-major; W's MN-major,
// W^T's K-major), one batch per stage kept in flight while the next one is issued
// (docs/perf-notes.md v13: fp16 M = 64 bs 64 0.0237 -> 0.0219 ms). float32 (WGMMA 1 with
// DTYPE_ID 4, BS 16 or 32, BM 64, one warpgroup): 3xTF32 on wgmma .tf32, which reads both
// operands K-major; W's block is split into hi and lo tiles in shared memory, K-major
// (tf32x3_tiles.cuh split_b_kmajor), x's fragments are split in registers and fed as the
// register operand (docs/perf-notes.md v24: bs 32 x @ W^T 0.0944 -> 0.0754 ms at M = 64).
//
// R > 1 (16-bit, mma.sync consumers): a CTA owns a group of R neighbouring output
// block-columns j * R .. j * R + R - 1 (columns at or past ncols skipped) and walks the union of
// their block-rows, so x's tile of a block-row is copied once for every block of the group in
// it, not once a block (at d = 0.1 four random columns share about 14% of their tiles). A step
// copies x's tile and the step's stored blocks, the block of the group's column q into slot q
// of the buffer; its entry is 4 * EV ints (_work_lists.column_group_table): x's block, the mask
// of the slots it fills, then the R stored blocks (-1 where none). Each of the WARPS_M consumer
// warps (WARPS_N 1) loads its x fragments once a step and multiplies them with every block of
// the step into that column's accumulators. Chunks, slots and colinfo are the groups' (split-K
// cuts a group's steps as a column's); one CTA a chunk and row tile, without PERSIST (v30: R 4
// with PERSIST measured slower than R 1, and was removed).
// QUEUE 1 (16-bit R 1 consumers, mma.sync or wgmma; no PERSIST): grid (P, 1), P the resident CTAs. The
// items are the (row tile, column) pairs t = tile * nchunks + c in row-tile-major order (chunk
// c a whole column, slot -1; the launcher orders a row tile's columns longest first), handed
// out by a counter in global memory (counters[0]): each CTA's producer takes its next item
// while it issues the copies of the one before, so CTAs that run fast take more items and at
// any time the CTAs work on about one row tile, whose x rows stay in L2. The ring runs on
// across items; the producer writes each stage's item (column, first row, last-step flag, no-
// copy flag) beside its barriers, and a stage with column -1 tells the consumers to stop. The
// last CTA to finish sets counters[0] and [1] back to zero (docs/perf-notes.md v33).
// Grid: (chunks, ceil(M / BM)); block: (WARPS_M * WARPS_N + 1) warps. PERSIST 1: grid (P,
// ceil(M / BM)), CTA c taking the chunks cta_items[c] .. cta_items[c + 1] - 1 in turn, the ring
// running on across them (a chunk's epilogue overlaps the copies of the next): the launcher
// cuts the entries, in column order, into P runs of near-equal length (_work_lists.cta_cut),
// so no CTA's column sets the tail (docs/perf-notes.md v23).
// Parameters (#defines; "the specs take" below says what _specs.dsd_stream_spec picks by
// default, which CUPY_BSPARSE_* variables can override): DTYPE_ID (1, 2: bs 32, 64; 4: bs 16,
// 32, 64), BS, TRANS_W, BM, STAGES, WARPS_M, WARPS_N;
// X_HINT, W_HINT: the copies' L2 policies (common.cuh's l2_policy: 0 evict_first, 1 evict_last,
// 2 evict_normal; above); the specs take W_HINT 2 on the 512-row wgmma queue set (v36);
// Y_HINT (undefined, the default: plain stores of y): the stores' L2 policy, above; the specs
// take 0 on the item queue's sets;
// PERSIST (0, the default, or 1, above): the specs take 1 up to M = 64 for float32 (not for bs
// 32 x @ W or bs 16 x @ W^T on mma.sync; always on the float32 wgmma consumers), 0 for 16-bit;
// QUEUE (0, the default, or 1, above): the specs take 1 for 16-bit bs 32's 512-row tiles from
// M = 1024 and for 16-bit bs 64's wgmma sets above M = 256;
// R (1, the default; up to 6, above): the specs take 4 for 16-bit bs 32 above M = 64 on a layout
// whose 4-column groups leave at most half of x's tile copies (_specs.stream_group; 2 or 4 at
// every bs when forced);
// XB (1, the default; R 1 only): x's tile copied as XB boxes of BM / XB rows (a TMA box has at
// most 256 rows, so BM 512 takes XB 2);
// ILV (0, the default; the queue only): n >= 2 hands out the last n row tiles' items
// interleaved (tile by tile for each column in the launcher's order), not tile after tile; the
// specs take 2 on the 512-row wgmma queue set (v37), 0 with QLIST;
// QLIST (0, the default; the queue only, without ILV): n > 0 takes the items from a host-ordered
// list, the chunk table with one row an item and its row tile in the slot field
// (_work_lists.queue_list: long columns of later row tiles handed out n row tiles early, v38);
// the specs take 8 on the 512-row wgmma queue set where the layout has a column of over twice
// the mean blocks (_specs.qlist_ahead);
// LATE (0, the default; the queue only): k >= 1 takes each next item from the counter when the
// producer has issued the current item's copies up to its k-th step from the end, not when the
// item begins, so a CTA does not hold an item while its ring still has a whole item to run
// (v41: the claim at the start made the CTAs' step counts 41-58 against the greedy queue's
// 43-52 on 12.8-step items); the specs take 3 on both wgmma queue sets;
// WG_EAGER (0, the default; 16-bit wgmma on the queue): 1 waits for each stage's batch and
// releases the stage at once, not after the next stage's batch is issued; the specs take 1 on
// both wgmma queue sets;
// MINB (1, the default): the CTAs an SM the launch bounds ask ptxas to fit (BM 512 at 16-bit
// bs 32: 94 registers at MINB 2, no spills, against 126); the specs take 2 on the first of the
// 512-row sets (bs 32 from M = 4096 where the queue does not fit the layout);
// WGMMA (0, the default, or 1 with WARPS_N 1 and BM / (WARPS_M / 4) a multiple of 64; float32:
// BS 16 or 32, BM 64, WARPS_M 4, XLO 0): the specs take 1, where the launcher asks for wgmma
// (sm_90a), for 16-bit bs 64 at 16 < M <= 64 and on the wgmma queue sets, and for float32 bs 32
// at 16 < M <= 64;
// float32 only: KSUM (8, the default, or 16), the reduction depth whose products are summed in
// one fresh tile before they are added to the accumulators (the specs take 16 where v11
// measured it faster); XLO (0, the default: each warp splits the x fragments it loads; 1: x
// arrives split by split_tf32.cu, tmap_x over its hi plane and tmap_xlo over its lo plane, whose
// tiles land in a lo tile per stage, so only W's fragments are split here; the specs take 1 for
// bs 64 at 16 < M <= 64, _specs.f32_split);
// TIMELINE (0, the default; n > 0, probes/p19.py: timeline.cuh's per-step stamps of the first n
// CTAs, events 0-2 the producer's acquire begun and done and its copies issued, 3 consumer warp
// 0's wait on `full` done, 4 / 5 consumer warp 0's / the last warp's release of the step; with
// 16-bit WGMMA a stage is released one step late, when its batch completed, and with float32
// WGMMA before the step's batch is issued).
// tma_tiles.cuh: RB, ATOM, NH, HC, and common.cuh, tma.cuh, tf32x3.cuh (float32)
#include "tma_tiles.cuh"

#ifndef KSUM
#define KSUM 8
#endif
#ifndef WGMMA
#define WGMMA 0
#endif
#ifndef XLO
#define XLO 0
#endif
#ifndef PERSIST
#define PERSIST 0
#endif
#ifndef R
#define R 1
#endif
#ifndef QUEUE
#define QUEUE 0
#endif
#if QUEUE && (R > 1 || PERSIST || XLO || DTYPE_ID == 4)
#error "dsd_stream.cu's item queue is for 16-bit R 1 consumers without PERSIST"
#endif
#ifndef WG_EAGER
#define WG_EAGER 0
#endif
#ifndef ILV
#define ILV 0
#endif
#if ILV && (!QUEUE || ILV < 2)
#error "dsd_stream.cu: ILV (the last row tiles' items interleaved) is 2 or more, for the item queue"
#endif
#ifndef LATE
#define LATE 0
#endif
#if LATE && (!QUEUE || LATE < 0)
#error "dsd_stream.cu: LATE (the next item claimed near the item's end) is for the item queue"
#endif
#ifndef QLIST
#define QLIST 0
#endif
#if QLIST && (!QUEUE || ILV)
#error "dsd_stream.cu: QLIST (the items in a host-ordered list) is for the item queue without ILV"
#endif
#if WG_EAGER && !(QUEUE && WGMMA && DTYPE_ID != 4)
#error "dsd_stream.cu: WG_EAGER is for the 16-bit wgmma consumers on the queue"
#endif
#ifndef MINB
#define MINB 1
#endif
#ifndef XB
#define XB 1
#endif
#if XB > 1 && (R > 1 || XLO || (WGMMA && DTYPE_ID == 4) || BM % (8 * XB))
#error "dsd_stream.cu copies x's tile as XB boxes for R 1 consumers without XLO or float32 wgmma only"
#endif
#if XLO && DTYPE_ID != 4
#error "dsd_stream.cu takes x split ahead (XLO) for float32 (DTYPE_ID 4) only"
#endif
#if R > 1 && (DTYPE_ID == 4 || WGMMA || WARPS_N != 1 || R > 6 || PERSIST)
#error "dsd_stream.cu groups up to 6 columns (R) for 16-bit mma.sync consumers, WARPS_N 1, without PERSIST"
#endif
#if WGMMA
#include "wgmma.cuh"
#endif
#include "timeline.cuh"

#define A_BYTES (BM * BS * (int)sizeof(elem_t))
#define B_BYTES (BS * BS * (int)sizeof(elem_t))
#define F32W (WGMMA && DTYPE_ID == 4)   // float32 wgmma consumers: two split sets of W's block
#define NC (WARPS_M * WARPS_N)         // consumer warps
#define NCT (NC * 32)
#define EV ((R + 5) / 4)                // R > 1: int4s of a step's entry (x's block, mask, R blocks)
#if R > 1
#define ENT_T int4
#else
#define ENT_T int2
#endif
static_assert(A_BYTES % ATOM == 0 && B_BYTES % ATOM == 0, "tiles keep the swizzle alignment");

// R > 1: a group step's entry (EV_ int4s) and its word w (w a constant after unrolling).
template <int EV_>
__device__ __forceinline__ void load_group_step(int4 (&e)[EV_], const int4* p) {
#pragma unroll
    for (int v = 0; v < EV_; ++v) e[v] = __ldg(p + v);
}
template <int EV_>
__device__ __forceinline__ int group_step_word(const int4 (&e)[EV_], int w) {
    const int4 q = e[w >> 2];
    return (w & 3) == 0 ? q.x : (w & 3) == 1 ? q.y : (w & 3) == 2 ? q.z : q.w;
}

// 16-bit W fragments of 16-deep step k (elements) for the n8 tiles nc0 + 0 .. NI - 1 of a tile at
// shared address `base` (the lane's row added, b_row below): x @ W by ldmatrix.trans of k rows,
// x @ W^T by ldmatrix of n rows; sw_hi / sw_mid as the consumers compute them.
template <int NI>
__device__ __forceinline__ void ld_b_step(unsigned (&b)[NI][2], unsigned base, int k, int nc0,
                                          unsigned sw_hi, unsigned sw_mid) {
#pragma unroll
    for (int ni = 0; ni < NI; ni += 2) {
        unsigned r[4];
        if (TRANS_W) ldsm_x4(r, base + ni * 8 * RB + (((k / 8) ^ sw_mid) << 4));
        else ldsm_x4_t(r, base + k * RB + (((nc0 + ni) ^ sw_hi) << 4));
        b[ni][0] = r[0]; b[ni][1] = r[1]; b[ni + 1][0] = r[2]; b[ni + 1][1] = r[3];
    }
}

// One stage's 16-bit products added to acc[MI][NI][4] (R 1 consumers, the warp's n8 tiles from
// NC0_): x's tile at shared address AS_ and W's block at BS_, the lane's fragment rows added
// (a_row, b_row), sw_hi / sw_mid in scope. A macro: as a function it changed the default
// cubins' code (docs/perf-notes.md v33).
#define MMA_STAGE_16(AS_, BS_, NC0_) {                                                          \
    const unsigned as = (AS_), bs = (BS_);                                                      \
    _Pragma("unroll")                                                                          \
    for (int k = 0; k < BS; k += 16) {                                                          \
        unsigned a[MI][4], b[NI][2];                                                            \
        _Pragma("unroll")                                                                      \
        for (int mi = 0; mi < MI; ++mi)                                                         \
            ldsm_x4(a[mi], as + mi * 16 * RB + (((k / 8) ^ sw_hi) << 4));                       \
        ld_b_step<NI>(b, bs, k, (NC0_), sw_hi, sw_mid);                                         \
        _Pragma("unroll")                                                                      \
        for (int mi = 0; mi < MI; ++mi)                                                         \
            _Pragma("unroll")                                                                  \
            for (int ni = 0; ni < NI; ++ni) mma(acc[mi][ni], a[mi], b[ni]);                     \
    }                                                                                           \
}

#if MINB > 1   // (a minimum of 1 written out changes the cubin: the default keeps none)
extern "C" __global__ void __launch_bounds__(NCT + 32, MINB)
#else
extern "C" __global__ void __launch_bounds__(NCT + 32)
#endif
bsmm_dsd_stream(const __grid_constant__ TensorMap tmap_x,
#if XLO
                const __grid_constant__ TensorMap tmap_xlo,
#endif
                const __grid_constant__ TensorMap tmap_w,
                const int4* __restrict__ chunk, const int2* __restrict__ colinfo,
                const ENT_T* __restrict__ ent,
#if PERSIST
                const int* __restrict__ cta_items,
#endif
                float* __restrict__ ws, int* __restrict__ counters,
                elem_t* __restrict__ y, long long ldy, int M,
#if R > 1
                int ncols, int nchunks,   // (nchunks unused since R > 1 lost PERSIST; dropping it
                                          // changes the cubins the suite ran)
#endif
#if QUEUE
                int nchunks,
#endif
                float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    // Tiles from the first ATOM-aligned address (the launcher adds ATOM bytes of slack):
    // STAGES x tiles, (XLO) STAGES tiles of x's lo plane, then STAGES x R W tiles, (F32W) two split
    // sets of a W block (hi, then lo), then full[STAGES], empty[STAGES] and one int
    // (split_combine's flag).
    const unsigned raw = smem_u32(smem_raw);
    const unsigned a0 = (raw + ATOM - 1) & ~(unsigned)(ATOM - 1);
    const unsigned lo0 = a0 + STAGES * A_BYTES;
    const unsigned b0 = lo0 + XLO * STAGES * A_BYTES;
    const unsigned ws0 = b0 + STAGES * R * B_BYTES;
    const unsigned bar0 = ws0 + F32W * 4 * B_BYTES;
    int& is_last = *reinterpret_cast<int*>(smem_raw + (bar0 - raw) + 16 * STAGES);
#if QUEUE
    // the stages' items (QUEUE): column, first row, flags (1 the item's last step, 2 no copies)
    int4* const meta = reinterpret_cast<int4*>(smem_raw + (bar0 - raw) + 16 * STAGES + 16);
#endif
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
#if R > 1
    // the CTA's chunk ck (group ck.x, entries ck.y .. ck.z - 1, slot ck.w) and its row tile
    // from im0, loaded before the barriers' init; the loops below run once
    const int4 ck0 = __ldg(chunk + blockIdx.x);
#define FOR_EACH_ITEM for (int once = 0; once < 1; ++once)
#define ITEM_FIELDS const int4 ck = ck0; const int im0 = blockIdx.y * BM
#elif QUEUE
    // (the items come from the queue: see the producer)
#elif PERSIST
    // the CTA's chunks, in turn
    const int it0 = __ldg(cta_items + blockIdx.x), it1 = __ldg(cta_items + blockIdx.x + 1);
#define FOR_EACH_CHUNK for (int it = it0; it < it1; ++it)
#define CHUNK_FIELDS const int4 ck = __ldg(chunk + it); \
    const int j = ck.x, nsteps = ck.z - ck.y, slot = ck.w
#else
    // one chunk, loaded before the barriers' init; the loops below run once. (v23: with the
    // persistent loop's run-time trip count here too, float32 at M = 4096 took up to 44 more
    // registers, 145 -> 189 at bs 64 x @ W^T, and measured 1.08-1.23x slower.)
    const int4 ck = __ldg(chunk + blockIdx.x);
    const int j = ck.x, e0 = ck.y, nsteps = ck.z - ck.y, slot = ck.w;
#define FOR_EACH_CHUNK for (int once = 0; once < 1; ++once)
#define CHUNK_FIELDS
#endif
// A split column's piece (slot >= 0): its partial through split_combine; a piece that is not
// the column's last goes on to the CTA's next chunk (PERSIST) or ends the CTA. (The two forms
// compile alike; each keeps its path's cubins byte-identical to the ones the GPU suite ran, v23.)
#if PERSIST
#define COMBINE_OR_NEXT(ACC_N) \
    int* counter = counters + (long long)j * gridDim.y + blockIdx.y; \
    if (slot >= 0 && !split_combine<ACC_N, NCT, 1>(&acc[0][0][0], ws, slot, colinfo[j], counter, \
                                                   is_last)) \
        continue
#else
#define COMBINE_OR_NEXT(ACC_N) \
    if (slot >= 0 && !split_combine<ACC_N, NCT, 1>(&acc[0][0][0], ws, slot, colinfo[j], \
                                                   counters + (long long)j * gridDim.y + blockIdx.y, \
                                                   is_last)) \
        return
#endif
#if R == 1 && !QUEUE
    const int m0 = blockIdx.y * BM;
#endif

    Ring<STAGES>::init(bar0, tid, NCT);   // empty: every consumer thread
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    if (tid == 0) TL_SPAN(0, 0);

    if (warp == NC) {
        // ------------------------------------------------------------ producer (one lane)
        if (lane == 0) {
            const unsigned long long x_hint = l2_policy<X_HINT>(), w_hint = l2_policy<W_HINT>();
            Ring<STAGES> ring(bar0);
#if R > 1
            int step = 0;              // the ring's uses over the CTA's chunk
            FOR_EACH_ITEM {
                ITEM_FIELDS;
                int4 e[EV];
                if (ck.y < ck.z) load_group_step<EV>(e, ent + (long long)ck.y * EV);
                for (int i = ck.y; i < ck.z; ++i, ++step, ring.advance()) {
                    int4 cur[EV];
#pragma unroll
                    for (int v = 0; v < EV; ++v) cur[v] = e[v];
                    if (i + 1 < ck.z) load_group_step<EV>(e, ent + (long long)(i + 1) * EV);
                    const int mask = cur[0].y;
                    TL_MARK(step, 0);
                    const unsigned full = ring.acquire(step, A_BYTES + __popc(mask) * B_BYTES);
                    TL_MARK(step, 1);
                    tma_2d(a0 + ring.s * A_BYTES, &tmap_x, cur[0].x * BS, im0, full, x_hint);
#pragma unroll
                    for (int q = 0; q < R; ++q)
                        if ((mask >> q) & 1)
                            tma_2d(b0 + (ring.s * R + q) * B_BYTES, &tmap_w, 0,
                                   group_step_word<EV>(cur, 2 + q) * BS, full, w_hint);
                    TL_MARK(step, 2);
                }
            }
#elif QUEUE
            // items from the counter in turn, each CTA's next one taken while the copies of the
            // one before go out
            static_assert(NH == 1, "16-bit tiles");
#if QLIST
            // QLIST: the table is the queue itself, one row an item, its row tile in the slot field
            const int nitems = nchunks;
#else
            const int ntiles = (M + BM - 1) / BM, nitems = nchunks * ntiles;
#endif
#if ILV
            // ILV: the last nt row tiles' items, from item base on, interleaved column by column
            // (each tile's columns longest first), so the last items handed out are the shortest
            const int nt = min(ILV, ntiles), base = (ntiles - nt) * nchunks;
#endif
            // an item from the counter
            auto claim = [&]() { return atomicAdd(counters, 1); };
            int t = claim(), step = 0;
            while (t < nitems) {
#if QLIST
                const int4 ck = __ldg(chunk + t);
#elif ILV
                const int tile = t < base ? t / nchunks : ntiles - nt + (t - base) % nt;
                const int4 ck = __ldg(chunk + (t < base ? t % nchunks : (t - base) / nt));
#else
                const int4 ck = __ldg(chunk + t % nchunks);
#endif
#if QLIST
                const int im0 = ck.w * BM;
#elif ILV
                const int im0 = tile * BM;
#else
                const int im0 = t / nchunks * BM;
#endif
#if LATE
                int next = nitems;   // claimed at the item's LATE-th step from its end
#else
                const int next = claim();
#endif
                // an empty column still takes one stage, with no copies, for its epilogue
                int2 e = ck.y < ck.z ? __ldg(ent + ck.y) : make_int2(0, 0);
                for (int i = ck.y; i < max(ck.z, ck.y + 1); ++i, ++step, ring.advance()) {
                    const int2 cur = e;
                    if (i + 1 < ck.z) e = __ldg(ent + i + 1);
                    const bool copies = i < ck.z;
                    TL_MARK(step, 0);
                    ring.wait_empty(step);
                    const int flags = (i + 1 >= ck.z ? 1 : 0) | (copies ? 0 : 2);
                    meta[ring.s] = make_int4(ck.x, im0, flags, 0);
                    const unsigned full = ring.full();
                    mbar_arrive_expect_tx(full, copies ? A_BYTES + B_BYTES : 0);
                    TL_MARK(step, 1);
                    if (copies) {
#pragma unroll
                        for (int xb = 0; xb < XB; ++xb)
                            tma_2d(a0 + ring.s * A_BYTES + xb * (BM / XB) * RB, &tmap_x, cur.x * BS,
                                   im0 + xb * (BM / XB), full, x_hint);
                        tma_2d(b0 + ring.s * B_BYTES, &tmap_w, 0, cur.y * BS, full, w_hint);
                    }
                    TL_MARK(step, 2);
#if LATE
                    // LATE: the next item is taken from the counter only once this item's last
                    // LATE copies are issued (the ring still holds STAGES steps), so the CTA
                    // that frees first gets it, not the one that began its own item first
                    if (i == max(ck.y, max(ck.z, ck.y + 1) - LATE))
                        next = claim();
#endif
                }
                t = next;
            }
            // the end: a stage of column -1 stops the consumers; the last CTA out zeroes the
            // counters for the next launch
            ring.wait_empty(step);
            meta[ring.s] = make_int4(-1, 0, 0, 0);
            mbar_arrive(ring.full());
            __threadfence();
            if (atomicAdd(counters + 1, 1) == (int)gridDim.x - 1) {
                atomicExch(counters, 0);
                atomicExch(counters + 1, 0);
            }
#else
            // the chunks' entries are contiguous in ent: one run from the first chunk's first
            // entry to the last chunk's end (a persistent CTA's chunks are consecutive rows)
#if PERSIST
            const int e0 = it0 < it1 ? __ldg(&chunk[it0].y) : 0;
            const int e1 = it0 < it1 ? __ldg(&chunk[it1 - 1].z) : 0;
            int2 e = e0 < e1 ? __ldg(ent + e0) : make_int2(0, 0);
            for (int step = 0; step < e1 - e0; ++step, ring.advance()) {
                const int2 cur = e;
                if (e0 + step + 1 < e1) e = __ldg(ent + e0 + step + 1);
#else
            int2 e = nsteps > 0 ? __ldg(ent + e0) : make_int2(0, 0);
            for (int step = 0; step < nsteps; ++step, ring.advance()) {
                const int2 cur = e;
                if (step + 1 < nsteps) e = __ldg(ent + e0 + step + 1);
#endif
                TL_MARK(step, 0);
                const unsigned full = ring.acquire(step, (1 + XLO) * A_BYTES + B_BYTES);
                TL_MARK(step, 1);
#pragma unroll
                for (int h = 0; h < NH; ++h) {
#pragma unroll
                    for (int xb = 0; xb < XB; ++xb)
                        tma_2d(a0 + ring.s * A_BYTES + h * (BM * RB) + xb * (BM / XB) * RB, &tmap_x,
                               cur.x * BS + h * HC, m0 + xb * (BM / XB), full, x_hint);
#if XLO
                    tma_2d(lo0 + ring.s * A_BYTES + h * (BM * RB), &tmap_xlo, cur.x * BS + h * HC, m0,
                           full, x_hint);
#endif
                    tma_2d(b0 + ring.s * B_BYTES + h * (BS * RB), &tmap_w, h * HC, cur.y * BS, full, w_hint);
                }
                TL_MARK(step, 2);
            }
#endif
        }
        return;
    }

#if R > 1
    // ------------------------------------ consumer warps (a group of R block-columns)
    // Warp wm: rows wm * WM .. of all R columns. Its x fragments are loaded once a step and
    // multiplied with each block the step has (mask bit q: column q's, in slot q).
    constexpr int WM = BM / WARPS_M, MI = WM / 16, NI = BS / 8, KS = BS / 16,
                  ACC_N = R * MI * NI * 4;
    static_assert(NH == 1 && WM % 16 == 0, "16-bit tiles, warp tiles of m16 rows");
    const unsigned sw = SWZ(lane & 7);
    const unsigned sw_hi = sw ^ (lane >> 4), sw_mid = sw ^ ((lane >> 3) & 1);
    // fragment rows as in the R = 1 consumers below, with wn = 0
    const unsigned a_row = (warp * WM + (lane & 15)) * RB;
    const unsigned b_row = TRANS_W ? ((lane & 7) + (lane >> 4) * 8) * RB
                                   : ((lane & 7) + ((lane >> 3) & 1) * 8) * RB;
    float acc[R][MI][NI][4];
    Ring<STAGES> ring(bar0);
    const int* masks = reinterpret_cast<const int*>(ent) + 1;   // word 1 of each entry
    int step = 0;                      // the ring's uses over the CTA's chunk
    FOR_EACH_ITEM {
        ITEM_FIELDS;
        zero_fill<ACC_N>(&acc[0][0][0][0]);
        for (int i = ck.y; i < ck.z; ++i, ++step, ring.advance()) {
            const int mask = __ldg(masks + (long long)i * 4 * EV);   // in flight during the wait
            ring.wait_full();
            if (tid == 0) TL_MARK(step, 3);
            const unsigned as = a0 + ring.s * A_BYTES + a_row, bs = b0 + ring.s * R * B_BYTES + b_row;
            unsigned a[KS][MI][4];
#pragma unroll
            for (int k = 0; k < KS; ++k)
#pragma unroll
                for (int mi = 0; mi < MI; ++mi)
                    ldsm_x4(a[k][mi], as + mi * 16 * RB + (((2 * k) ^ sw_hi) << 4));
#pragma unroll
            for (int q = 0; q < R; ++q) {
                if (!((mask >> q) & 1)) continue;
                const unsigned bq = bs + q * B_BYTES;
#pragma unroll
                for (int k = 0; k < KS; ++k) {
                    unsigned b[NI][2];
                    ld_b_step<NI>(b, bq, 16 * k, 0, sw_hi, sw_mid);
#pragma unroll
                    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                        for (int ni = 0; ni < NI; ++ni) mma(acc[q][mi][ni], a[k][mi], b[ni]);
                }
            }
            if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step, warp == 0 ? 4 : 5);
            ring.release();
        }
        // (the loop runs once, so `continue` ends the CTA)
        int* counter = counters + (long long)ck.x * gridDim.y + blockIdx.y;
        if (ck.w >= 0 && !split_combine<ACC_N, NCT, 1>(&acc[0][0][0][0], ws, ck.w, colinfo[ck.x],
                                                       counter, is_last))
            continue;
        store_group_tiles<BS, R, MI, NI>(y + (long long)im0 * ldy, ldy, acc, ck.x * R, ncols,
                                         warp * WM, min(BM, M - im0), alpha, beta, lane);
    }
    if (tid == 0) TL_SPAN(1, step);
#elif F32W
    // ----------------------------- consumer warpgroup (float32: 3xTF32 on wgmma, sm_90a)
    // One warpgroup, BM = 64 rows, BS 16 or 32. A step: split W's block into its hi and lo TF32
    // parts, written K-major (transposed here for x @ W) into split set step % 2, while the
    // previous step's batch runs; wait for that batch and add its fresh tiles to the
    // accumulators; load x's fragments (ldmatrix) and split them in registers; release the ring
    // buffer; then one batch of 3 BS / 8 wgmma m64nBSk8 (A from registers), the products of
    // each 16 deep summed in a fresh tile in tf32x3.cuh's order (the lo * hi and hi * lo terms,
    // then hi * hi: chains of 6 truncating adds, as KSUM 16's), added with rounding FADDs.
    constexpr int NI = BS / 8, KS = BS / 8, FT = BS / 16;
    static_assert(NC == 4 && BM == 64 && (BS == 16 || BS == 32) && !XLO,
                  "float32 wgmma: one warpgroup of 64 rows, BS 16 or 32, x split here");
    const int valid_rows = min(BM, M - m0);
    float acc[1][NI][4], fr[FT][NI][4];
    unsigned ah[KS][4], al[KS][4];
    // Wait for the batch in flight (its A fragments and fresh tiles stay in their registers
    // until then) and, if there was one, add its fresh tiles to the accumulators.
    auto fold = [&](bool pend) {
        wgmma_wait<0>();
        wgmma_pin<FT * NI * 4>(&fr[0][0][0]);
        wgmma_pin_a<KS * 4>(&ah[0][0]);
        wgmma_pin_a<KS * 4>(&al[0][0]);
        if (pend) {
#pragma unroll
            for (int g = 0; g < FT; ++g)
#pragma unroll
                for (int i = 0; i < NI * 4; ++i) (&acc[0][0][0])[i] += (&fr[g][0][0])[i];
        }
    };
    Ring<STAGES> ring(bar0);
    int gstep = 0;                     // steps of the CTA's earlier chunks
    FOR_EACH_CHUNK {
        CHUNK_FIELDS;
        zero_fill<NI * 4>(&acc[0][0][0]);
        bool pend = false;             // a batch in flight whose fresh tiles are not yet added
        for (int step = gstep; step < gstep + nsteps; ++step, ring.advance()) {
            ring.wait_full();
            if (tid == 0) TL_MARK(step, 3);
            const unsigned hs = ws0 + (step & 1) * (2 * B_BYTES);   // hi; lo at + B_BYTES
            split_b_kmajor<TRANS_W, NCT>(b0 + ring.s * B_BYTES, hs, hs + B_BYTES, tid);
            fold(pend);
            const unsigned as = a0 + ring.s * A_BYTES;
#pragma unroll
            for (int ks = 0; ks < KS; ++ks) {
                unsigned a[1][4];
                ld_a_kcontig<1, BM>(a, as, warp * 16, ks * 8, lane);
                split_all<4>(a[0], ah[ks], al[ks]);
            }
            if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step, warp == 0 ? 4 : 5);
            ring.release();            // fence.proxy.async: the split writes reach the wgmma too
            sync_threads_of<2>(NCT);
            wgmma_pin<FT * NI * 4>(&fr[0][0][0]);
            wgmma_fence();
            // B's descriptor for 8-deep step k of the split tile at `tile` (hs: hi, + B_BYTES: lo)
            auto b_desc = [&](unsigned tile, int k) {
                return wgmma_desc(tile + (k * 8 / F32_SC) * (BS * RB) + (k * 8 % F32_SC) * 4);
            };
#pragma unroll
            for (int g = 0; g < FT; ++g)
                wgmma_3xtf32_k16<BS>(&fr[g][0][0], ah + 2 * g, al + 2 * g, [&](int k, bool lo) {
                    return b_desc(hs + (lo ? B_BYTES : 0), 2 * g + k);
                });
            wgmma_commit();
            wgmma_pin<FT * NI * 4>(&fr[0][0][0]);
            pend = true;
        }
        fold(pend);
        gstep += nsteps;
        COMBINE_OR_NEXT(NI * 4);
        store_tiles<1, NI>(y + (long long)m0 * ldy + (long long)j * BS, ldy, acc, warp * 16, 0,
                           valid_rows, alpha, beta, lane);
    }
    if (tid == 0) TL_SPAN(1, gstep);
#elif WGMMA
// One stage's 16-bit batch of this warpgroup, issued and committed, not waited for: acc[MW][NI][4]
// (ACC_N floats) += its rows of x's tile at shared address AS_ times W's block at BW_ (x
// K-major; W^T's block K-major, k16 = 32 bytes along the row; W's MN-major, 16 rows). A macro,
// as MMA_STAGE_16, so the cubins stay those the suite ran.
#define WGMMA_STAGE_16(AS_, BW_) {                                                              \
    const unsigned as = (AS_), bw = (BW_);                                                      \
    wgmma_pin<ACC_N>(&acc[0][0][0]);                                                            \
    wgmma_fence();                                                                              \
    _Pragma("unroll")                                                                          \
    for (int k = 0; k < BS; k += 16) {                                                          \
        const unsigned long long db = wgmma_desc(bw + (TRANS_W ? k * 2 : k * RB));              \
        _Pragma("unroll")                                                                      \
        for (int mw = 0; mw < MW; ++mw)                                                         \
            wgmma_m64k16<BS, TRANS_W ? 0 : 1>(&acc[mw][0][0], wgmma_desc(as + mw * 64 * RB + k * 2), db); \
    }                                                                                           \
    wgmma_commit();                                                                             \
    wgmma_pin<ACC_N>(&acc[0][0][0]);                                                            \
}
    // ------------------------------------------------- consumer warpgroups (wgmma, sm_90a)
    // NC / 4 warpgroups of WGM rows each, MW m64 slices a group; one batch of BS / 16 * MW
    // wgmma per stage, kept in flight while the next stage's batch is issued: a stage is
    // released once its batch completed (wgmma_wait<1> after the next commit).
    constexpr int NWG = NC / 4, WGM = BM / NWG, MW = WGM / 64, NI = BS / 8, ACC_N = MW * NI * 4;
    static_assert(WARPS_N == 1 && NC % 4 == 0 && WGM % 64 == 0, "wgmma: warpgroups of m64 slices");
    static_assert(STAGES >= 2, "wgmma: a stage is released one step late");
    const int wg = warp >> 2, wq = warp & 3;
    float acc[MW][NI][4];
    Ring<STAGES> ring(bar0);
#if QUEUE
    // the stages in turn, each with its item in meta (as the mma.sync consumers below); a
    // stage is released once the next stage's batch is issued and its own completed, and at
    // an item's last step every batch is waited for, its stage released and the tile stored
    zero_fill<ACC_N>(&acc[0][0][0]);
    int held = -1, step = 0;
    for (;; ++step, ring.advance()) {
        ring.wait_full();
        const int4 item = meta[ring.s];
        if (item.x < 0) break;
        if (tid == 0) TL_MARK(step, 3);
        if (!(item.z & 2)) {
            WGMMA_STAGE_16(a0 + ring.s * A_BYTES + wg * WGM * RB, b0 + ring.s * B_BYTES)
#if WG_EAGER
            wgmma_wait<0>();           // the batch completed: its stage goes back at once
            wgmma_pin<ACC_N>(&acc[0][0][0]);
            if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step, warp == 0 ? 4 : 5);
            ring.release();
#else
            wgmma_wait<1>();
            if (held >= 0) release_to_tma(bar0 + 8 * (STAGES + held));
            held = ring.s;
#endif
        } else {
            ring.release();            // an empty column's stage: nothing reads it
        }
        if (item.z & 1) {
            wgmma_wait<0>();
            wgmma_pin<ACC_N>(&acc[0][0][0]);
            if (held >= 0) release_to_tma(bar0 + 8 * (STAGES + held));
            held = -1;
            const int valid_rows = min(BM, M - item.y);
#pragma unroll
            for (int mw = 0; mw < MW; ++mw)
                store_tiles<1, NI>(y + (long long)item.y * ldy + (long long)item.x * BS, ldy,
                                   reinterpret_cast<const float (&)[1][NI][4]>(acc[mw]),
                                   wg * WGM + mw * 64 + wq * 16, 0, valid_rows, alpha, beta, lane);
            zero_fill<ACC_N>(&acc[0][0][0]);
        }
    }
    if (tid == 0) TL_SPAN(1, step);
#else
    const int valid_rows = min(BM, M - m0);
    int gstep = 0;                     // steps of the CTA's earlier chunks
    FOR_EACH_CHUNK {
        CHUNK_FIELDS;
        zero_fill<ACC_N>(&acc[0][0][0]);
        int held = -1;                     // stage whose batch may still be running
        for (int step = gstep; step < gstep + nsteps; ++step, ring.advance()) {
            ring.wait_full();
            if (tid == 0) TL_MARK(step, 3);
            WGMMA_STAGE_16(a0 + ring.s * A_BYTES + wg * WGM * RB, b0 + ring.s * B_BYTES)
            wgmma_wait<1>();
            // events 4 / 5 of step - 1: its batch completed, its stage released now
            if (held >= 0 && lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step - 1, warp == 0 ? 4 : 5);
            if (held >= 0) release_to_tma(bar0 + 8 * (STAGES + held));
            held = ring.s;
        }
        wgmma_wait<0>();
        wgmma_pin<ACC_N>(&acc[0][0][0]);
        // the chunk's last stage, for the CTA's next chunk
        if (PERSIST && held >= 0) release_to_tma(bar0 + 8 * (STAGES + held));
        gstep += nsteps;
        COMBINE_OR_NEXT(ACC_N);
#pragma unroll
        for (int mw = 0; mw < MW; ++mw)
            store_tiles<1, NI>(y + (long long)m0 * ldy + (long long)j * BS, ldy,
                               reinterpret_cast<const float (&)[1][NI][4]>(acc[mw]),
                               wg * WGM + mw * 64 + wq * 16, 0, valid_rows, alpha, beta, lane);
    }
    if (tid == 0) TL_SPAN(1, gstep);
#endif
#else
    // ---------------------------------------------------------------- consumer warps
    constexpr int WM = BM / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 rows, pairs of n8 columns");
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
#if DTYPE_ID != 4
    // Every fragment row this lane addresses is congruent to lane mod 8, so one chunk XOR
    // serves them all; the lane's half-selects (lane >> 4, lane >> 3 & 1) fold into it
    // because the chunk indices they add to are even.
    const unsigned sw = SWZ(lane & 7);
    const unsigned sw_hi = sw ^ (lane >> 4), sw_mid = sw ^ ((lane >> 3) & 1);
    // A (x tile, k contiguous): rows wm*WM + mi*16 + (lane & 15), chunk k/8 + (lane >> 4)
    const unsigned a_row = (wm * WM + (lane & 15)) * RB;
    // B, x @ W (k rows, n contiguous, ldmatrix.trans): rows k + (lane & 7) + (lane >> 3 & 1) * 8,
    //    chunk (wn*WN + ni*8)/8 + (lane >> 4);
    // B, x @ W^T (n rows, k contiguous): rows wn*WN + ni*8 + (lane & 7) + (lane >> 4) * 8,
    //    chunk k/8 + (lane >> 3 & 1).
    const unsigned b_row = TRANS_W ? (wn * WN + (lane & 7) + (lane >> 4) * 8) * RB
                                   : ((lane & 7) + ((lane >> 3) & 1) * 8) * RB;
#endif
    float acc[MI][NI][4];
    Ring<STAGES> ring(bar0);
#if QUEUE
    // the stages in turn, each with its item in meta; after an item's last step its tile goes
    // out and the accumulators start again from zero
    zero_fill<MI * NI * 4>(&acc[0][0][0]);
    int step = 0;
    for (;; ++step, ring.advance()) {
        ring.wait_full();
        const int4 item = meta[ring.s];
        if (item.x < 0) break;
        if (tid == 0) TL_MARK(step, 3);
        if (!(item.z & 2))
            MMA_STAGE_16(a0 + ring.s * A_BYTES + a_row, b0 + ring.s * B_BYTES + b_row, (wn * WN) / 8)
        if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step, warp == 0 ? 4 : 5);
        ring.release();
        if (item.z & 1) {
            store_tiles<MI, NI>(y + (long long)item.y * ldy + (long long)item.x * BS, ldy, acc,
                                wm * WM, wn * WN, min(BM, M - item.y), alpha, beta, lane);
            zero_fill<MI * NI * 4>(&acc[0][0][0]);
        }
    }
    if (tid == 0) TL_SPAN(1, step);
#else
    const int valid_rows = min(BM, M - m0);
    int gstep = 0;                     // steps of the CTA's earlier chunks
    FOR_EACH_CHUNK {
        CHUNK_FIELDS;
        zero_fill<MI * NI * 4>(&acc[0][0][0]);
        for (int step = gstep; step < gstep + nsteps; ++step, ring.advance()) {
            ring.wait_full();
            if (tid == 0) TL_MARK(step, 3);
#if DTYPE_ID == 4
            // float32 tiles: fragments through f32_off (tf32x3_tiles.cuh); the products of KSUM / 8
            // consecutive 8-deep steps are summed in one fresh tile (tf32x3.cuh mma_3xtf32)
            const unsigned as = a0 + ring.s * A_BYTES, bs = b0 + ring.s * B_BYTES;
            constexpr int S = KSUM / 8;
#pragma unroll
            for (int k = 0; k < BS; k += KSUM) {
                unsigned a[S][MI][4], b[S][NI][2];
#if XLO
                unsigned al[S][MI][4];
#endif
#pragma unroll
                for (int s = 0; s < S; ++s) {
#if XLO
                    // x's lo tile: lo0 + ring.s * A_BYTES = as + STAGES * A_BYTES
                    ld_a_kcontig_hl<MI, BM, STAGES * A_BYTES>(a[s], al[s], as, wm * WM, k + 8 * s, lane);
#else
                    ld_a_kcontig<MI, BM>(a[s], as, wm * WM, k + 8 * s, lane);
#endif
                    if (TRANS_W) ld_b_kcontig<NI, BS>(b[s], bs, wn * WN, k + 8 * s, lane);
                    else ld_b_krows<NI, BS>(b[s], bs, wn * WN, k + 8 * s, lane);
                }
#if XLO
                // x's hi and lo as loaded; W's fragments split here
                unsigned bh[S][NI][2], bl[S][NI][2];
                split_all<S * NI * 2>(&b[0][0][0], &bh[0][0][0], &bl[0][0][0]);
                mma_3xtf32_split<S, MI, NI>(acc, a, al, bh, bl);
#else
                mma_3xtf32<S, MI, NI>(acc, a, b);
#endif
            }
#else
            MMA_STAGE_16(a0 + ring.s * A_BYTES + a_row, b0 + ring.s * B_BYTES + b_row, (wn * WN) / 8)
#endif
            if (lane == 0 && (warp == 0 || warp == NC - 1)) TL_MARK(step, warp == 0 ? 4 : 5);
            ring.release();
        }
        gstep += nsteps;
        constexpr int ACC_N = MI * NI * 4;
        COMBINE_OR_NEXT(ACC_N);
        store_tiles<MI, NI>(y + (long long)m0 * ldy + (long long)j * BS, ldy, acc, wm * WM, wn * WN,
                            valid_rows, alpha, beta, lane);
    }
    if (tid == 0) TL_SPAN(1, gstep);
#endif
#endif
}
#undef MMA_STAGE_16
#undef WGMMA_STAGE_16
#undef FOR_EACH_CHUNK
#undef CHUNK_FIELDS
#undef COMBINE_OR_NEXT
#undef F32W
#undef ENT_T
#undef EV
#undef FOR_EACH_ITEM
#undef ITEM_FIELDS
