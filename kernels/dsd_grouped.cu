// dsd_grouped.cu: dense x block-sparse -> dense, walking groups of output block-columns.
//
//     y = alpha * x @ op(W) + beta * y        op(W) = W (TRANS_W 0) or W^T (TRANS_W 1)
//
// Same operands and contract as dsd.cu. dsd.cu gives each CTA one output block-column, so every
// stored block re-reads its own (BM x BS) tile of x from L2: for small blocks that is many times
// the bytes of W (bs 8, M = 64: 1 KB of x per 128-byte block). Here a CTA owns R neighbouring
// output block-columns (a group) and walks its K range in steps of KW columns of x: each step
// loads the dense x slab x[rows, k0 : k0 + KW] once and every stored block of the group that
// falls in it, so the slab is shared by all the group's blocks in those block-rows.
//
// Tables (built by cupy_bsparse/_gpu_ops.py from dsd.cu's look-up entries):
//   gent[e] = (stored block b, (c_local << 16) | jl): block b multiplies x's column block
//             k0 / BS + c_local into output block-column group * R + jl. Entries are sorted by
//             (group, slab, block-row, column), and for TRANS_W, within each step, by (column,
//             block-row) instead (W's rows in storage order); one step holds at most CAP of them.
//   step[s] = (k0, e0, e1, kcols): its entries [e0, e1) and the x columns [k0, k0 + kcols)
//             they read (kcols <= KW: its lowest to its highest block-row).
//   item[i] = (group, s0, s1, slot): CTA column i takes steps [s0, s1) of its group. A group
//             cut into several items (split-K) combines their float32 partials exactly as
//             dsd.cu does (common.cuh split_combine; ginfo[group] = (first slot, items)).
// Every output element of the group's columns below ncols is written, also when the group has
// no stored blocks at all.
//
// Grid: (items, ceil(M / BM)). Warps: WARPS_M x WARPS_N; warp (wm, wn) owns rows
// [wm * BM / WARPS_M, ...) of the block-columns wn * RW ... wn * RW + RW - 1 of the group.
//
// Parameters (#defines): DTYPE_ID (1, 2, 3 or 4: tensor cores), BS, TRANS_W, BM, R, KW, CAP,
// STAGES, WARPS_M, WARPS_N, MIN_CTAS (resident CTAs per SM the registers are capped for),
// PF (steps of look-up prefetch).
#include "common.cuh"

#if !USE_MMA
#error "dsd_grouped.cu runs on tensor cores only (DTYPE_ID 1, 2, 3, 4)"
#endif

#if F32_DATA
#define A_LD (KW + 4)
#if TRANS_W
#define B_LD (BS + 4)
#else
#define B_LD (BS == 8 ? 8 : BS + 8)
#endif
#else
#define PAD16(n) ((n) * 2 >= 32 ? (n) + 8 : (n))
#define A_LD PAD16(KW)
#define B_LD PAD16(BS)
#endif
#define A_STAGE (BM * A_LD)
#define W_BLK (BS * B_LD)
#define B_STAGE (CAP * W_BLK)
#define META_STAGE (CAP + 4)          // ints: [0] = entry count, [1 + q] = entry q's code
#define NT (WARPS_M * WARPS_N * 32)
#define RW (R / WARPS_N)

// Chunks (16 bytes) of one stored block, and how many of a step's blocks' chunks each thread
// copies.
#define VEC (16 / (int)sizeof(elem_t))
#define CPB (BS * BS / VEC)
#define PASSES (CAP * CPB / NT)

// 16-bit types with BS 8 or 16 take their fragments through shared-window addresses
// (common.cuh small_block_mma).
#define FRAG_S ((DTYPE_ID == 1 || DTYPE_ID == 2) && BS <= 16)

// MIN_CTAS (2 where it costs no spills): one CTA's barrier wait is covered by another's work.
extern "C" __global__ void __launch_bounds__(NT, MIN_CTAS)
bsmm_dsd_grouped(const elem_t* __restrict__ x, long long ldx, const elem_t* __restrict__ w,
                 const int4* __restrict__ item, const int2* __restrict__ ginfo,
                 const int4* __restrict__ step, const int2* __restrict__ gent,
                 float* __restrict__ ws, int* __restrict__ counters,
                 elem_t* __restrict__ y, long long ldy, int M, int ncols, float alpha, float beta)
{
    static_assert(R % WARPS_N == 0 && KW % BS == 0 && KW % VEC == 0, "tile shape");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    elem_t* As = reinterpret_cast<elem_t*>(smem_raw);
    elem_t* Ws = As + STAGES * A_STAGE;
    int* Meta = reinterpret_cast<int*>(Ws + STAGES * B_STAGE);
    const int tid = threadIdx.x;
    const int4 it = __ldg(item + blockIdx.x);
    const int grp = it.x, s0 = it.y, s1 = it.z, slot = it.w;
    const int m0 = blockIdx.y * BM;
    const int valid_rows = min(BM, M - m0);
    const elem_t* xt = x + (long long)m0 * ldx;

    // Prefetch. The ring asks for steps in order; when it asks for step s this thread holds
    // the records of steps s .. s + 2 PF - 1 (rq) and the entries it will copy for steps
    // s .. s + PF - 1 (eq), so every global load has PF steps (entries) or more (records) of
    // pipeline time before it is used. One step of slack measured ~2 us per step: the loaded
    // GPU's memory latency, not the copies, set the pace.
    int4 rq[2 * PF];
    int2 eq[PF][PASSES];
    auto rec = [&](int s) { return s < s1 ? __ldg(step + s) : make_int4(0, 0, 0, 0); };
    auto entries = [&](int2 (&dst)[PASSES], int4 r) {
#pragma unroll
        for (int p = 0; p < PASSES; ++p) {
            const int e = r.y + tid / CPB + p * (NT / CPB);
            dst[p] = e < r.z ? __ldg(gent + e) : make_int2(-1, 0);
        }
    };
#pragma unroll
    for (int i = 0; i < 2 * PF; ++i) rq[i] = rec(s0 + i);
#pragma unroll
    for (int i = 0; i < PF; ++i) entries(eq[i], rq[i]);

    // Copy assignments, fixed per thread: x slab chunk column xq of rows xr, xr + XROWS, ...;
    // block chunk wc of the step's blocks wq0, wq0 + QSTEP, ... Only k0, the block indices
    // and the stage change from step to step.
    constexpr int XC = KW / VEC, XROWS = NT / XC, XPASS = (BM + XROWS - 1) / XROWS;
    constexpr int QSTEP = NT / CPB;
    static_assert(NT % XC == 0 && NT % CPB == 0 && CAP % QSTEP == 0, "copy assignment");
    constexpr unsigned ESZ = sizeof(elem_t);
    const int xq = tid % XC, xr = tid / XC, wc = tid % CPB, wq0 = tid / CPB;
    const elem_t* xsrc = xt + (long long)xr * ldx + xq * VEC;
    const long long xstep = (long long)XROWS * ldx;
    const unsigned sA = smem_u32(As), sW = smem_u32(Ws);
    const unsigned xdst = sA + (xr * A_LD + xq * VEC) * ESZ;
    const int woff = (wc / (BS / VEC)) * BS + (wc % (BS / VEC)) * VEC;
    const unsigned wdst = sW + (wq0 * W_BLK + (wc / (BS / VEC)) * B_LD + (wc % (BS / VEC)) * VEC) * ESZ;

    auto load_stage = [&](int buf, int k) {
        const int4 cur = rq[0];
        int* meta = Meta + buf * META_STAGE;
        // the x slab: rows [m0, m0 + valid_rows) (zero-filled below), columns [k0, k0 + kcols)
        if (xq * VEC < cur.w) {
#pragma unroll
            for (int it = 0; it < XPASS; ++it) {
                const int r = xr + it * XROWS;
                if (BM % XROWS == 0 || r < BM) {
                    const bool ok = r < valid_rows;
                    cp_async16_s(xdst + (buf * A_STAGE + it * XROWS * A_LD) * ESZ,
                                 ok ? xsrc + it * xstep + cur.x : xt, ok ? 16 : 0);
                }
            }
        }
        // the step's stored blocks, in entry order; the thread copying a block's first chunk
        // also writes its code (a plain store: the ring's barrier publishes it with the copies)
#pragma unroll
        for (int p = 0; p < PASSES; ++p) {
            const int2 e = eq[0][p];
            if (e.x >= 0) {
                cp_async16_s(wdst + (buf * B_STAGE + p * QSTEP * W_BLK) * ESZ,
                             w + (long long)e.x * (BS * BS) + woff, 16);
                if (wc == 0) meta[1 + wq0 + p * QSTEP] = e.y;
            }
        }
        if (tid == 0) meta[0] = cur.z - cur.y;
#pragma unroll
        for (int i = 0; i + 1 < 2 * PF; ++i) rq[i] = rq[i + 1];
        rq[2 * PF - 1] = rec(s0 + k + 2 * PF);
#pragma unroll
        for (int i = 0; i + 1 < PF; ++i)
#pragma unroll
            for (int p = 0; p < PASSES; ++p) eq[i][p] = eq[i + 1][p];
        entries(eq[PF - 1], rq[PF - 1]);
    };

    constexpr int WM = BM / WARPS_M, MI = WM / 16, NI = BS / 8;
    static_assert(WM % 16 == 0, "warp tile");
    const int warp = tid >> 5, lane = tid & 31;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    float acc[RW][MI][NI][4];
    zero_fill<RW * MI * NI * 4>(&acc[0][0][0][0]);
#if FRAG_S
    // Per-lane ldmatrix byte offsets (16-bit types, BS 8 or 16): entry-dependent parts are
    // added per block, the rest folds into the instructions.
    const unsigned a_lane = sA + (wm * WM * A_LD) * ESZ +
        (BS == 8 ? lane * A_LD : (lane & 15) * A_LD + (lane >> 4) * 8) * ESZ;
    const unsigned b_lane = sW + small_block_b_lane<BS, (bool)TRANS_W>(lane, B_LD) * ESZ;
#endif

    cp_async_ring<STAGES>(s1 - s0, load_stage, [&](int buf) {
        const elem_t* as = As + buf * A_STAGE + wm * WM * A_LD;
        const elem_t* bs = Ws + buf * B_STAGE;
        const int* meta = Meta + buf * META_STAGE;
        const int n = meta[0];
        // each warp multiplies the blocks of its own columns (common.cuh for_each_owned_entry)
        for_each_owned_entry<RW>(meta, n, wn * RW, lane, [&](int q, int cl, int e) {
#if FRAG_S
            small_block_mma<BS, (bool)TRANS_W, A_LD * 2>(
                acc[q], a_lane + (buf * A_STAGE + cl * BS) * ESZ,
                b_lane + (buf * B_STAGE + e * W_BLK) * ESZ);
#else
            warp_mma<MI, NI, BS, true, (bool)TRANS_W>(
                acc[q], as + cl * BS, A_LD, bs + e * W_BLK, B_LD, lane);
#endif
        });
    });

    constexpr int ACC_N = RW * MI * NI * 4;
    if (slot >= 0 && !split_combine<ACC_N, NT>(&acc[0][0][0][0], ws, slot, ginfo[grp],
                                               counters + (long long)grp * gridDim.y + blockIdx.y,
                                               *reinterpret_cast<int*>(smem_raw)))
        return;

    store_group_tiles<BS>(y + (long long)m0 * ldy, ldy, acc, grp * R + wn * RW, ncols, wm * WM,
                          valid_rows, alpha, beta, lane);
}
