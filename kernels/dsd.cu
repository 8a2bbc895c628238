// dsd.cu: dense x block-sparse -> dense.
//
//     y = alpha * x @ op(W) + beta * y        op(W) = W (TRANS_W 0) or W^T (TRANS_W 1)
//
// x: (M, K_in) elem_t, unit stride in its last axis, row stride ldx, 16-byte aligned rows.
// W: stored blocks w (nnzb, BS, BS), row-major, as in scipy's BSR `data`.
// y: (M, N) elem_t, row stride ldy. When beta == 0, y is only written.
//
// Look-up table (built once per layout by cupy_bsparse/_gpu_ops.py): output block-column j
// takes the entries ent[ptr[j] .. ptr[j+1]), each (c, b): x's column block c times stored
// block b (or its transpose). Every output element is written, also for empty block-columns.
//
// Work list: chunk[i] = (j, e0, e1, slot) gives CTA column i the entries e0 .. e1-1 of output
// block-column j. A column with one chunk (slot < 0) is written directly. A long column is cut
// into colinfo[j].y chunks (split-K, to fill the GPU when M is small and to balance columns of
// very unequal length): each chunk stores its float32 partial tile in ws[slot], and the last
// chunk to finish (an integer counter per (column, row tile); no float atomics) adds the
// partials in slot order colinfo[j].x, +1, ... and writes y. The sum order is fixed, so results
// are bitwise reproducible. The last chunk resets the counter to 0 for the next launch.
//
// Grid: (chunks, ceil(M / BM)). CTA (i, t) computes rows [t*BM, t*BM + BM) of chunk i.
// Neighbouring CTAs share t, so the x rows they re-read stay in L2.
//
// Parameters (prepended as #defines by cupy_bsparse/compiler.py):
//   DTYPE_ID  see common.cuh         BS      block size (8, 16, 32, 64)
//   TRANS_W   0 or 1                 BM      rows of x per CTA
//   G         blocks per stage       STAGES  pipeline depth (>= 2)
//   tensor cores (DTYPE_ID 1, 2, 3): WARPS_M x WARPS_N warps tile the BM x BS output
//   CUDA cores   (DTYPE_ID 0):       each thread owns SIMT_TM rows x SIMT_TN columns
#include "common.cuh"

#define KST (G * BS)
#if DTYPE_ID == 0 || DTYPE_ID == 3
// float32 tiles: row pads chosen so the warp's fragment reads hit 32 distinct banks.
#define A_LD (KST + 4)
#if TRANS_W
#define B_LD (KST + 4)
#else
#define B_LD (BS == 8 ? 8 : BS + 8)
#endif
#else
// 16-bit tiles: a 16-byte pad staggers the eight rows one ldmatrix reads.
#define PAD16(n) ((n) * 2 >= 32 ? (n) + 8 : (n))
#define A_LD PAD16(KST)
#if TRANS_W
#define B_LD PAD16(KST)
#else
#define B_LD PAD16(BS)
#endif
#endif
#define A_STAGE (BM * A_LD)
#define B_STAGE ((TRANS_W ? BS : KST) * B_LD)

#if USE_MMA
#define NT (WARPS_M * WARPS_N * 32)
#else
#define NT ((BS / SIMT_TN) * (BM / SIMT_TM))
#endif

extern "C" __global__ void __launch_bounds__(NT)
bsmm_dsd(const elem_t* __restrict__ x, long long ldx, const elem_t* __restrict__ w,
         const int4* __restrict__ chunk, const int2* __restrict__ colinfo,
         const int2* __restrict__ ent, float* __restrict__ ws, int* __restrict__ counters,
         elem_t* __restrict__ y, long long ldy, int M, float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    elem_t* As = reinterpret_cast<elem_t*>(smem_raw);
    elem_t* Bs = As + STAGES * A_STAGE;
    const int tid = threadIdx.x;
    const int4 ck = __ldg(chunk + blockIdx.x);
    const int j = ck.x, e0 = ck.y, e1 = ck.z, slot = ck.w;
    const int m0 = blockIdx.y * BM;
    const int nsteps = (e1 - e0 + G - 1) / G;
    const int valid_rows = min(BM, M - m0);
    const elem_t* xt = x + (long long)m0 * ldx;

    // Look-up entries are fetched one pipeline step ahead: the ring asks for steps 0, 1, 2, ...
    // in order, so each call issues its copies from entries loaded by the previous call and
    // starts the load of the next step's. With 2 stages the entry load would otherwise sit in
    // front of every step's copies (measured 9-15% at small M, docs/perf-notes.md v3).
    int2 next[G];
    auto fetch = [&](int step) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const int e = e0 + step * G + g;
            next[g] = e < e1 ? __ldg(ent + e) : make_int2(-1, 0);
        }
    };
    fetch(0);
    auto load_stage = [&](int buf, int step) {
        elem_t* as = As + buf * A_STAGE;
        elem_t* bs = Bs + buf * B_STAGE;
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const bool ok = next[g].x >= 0;
            copy_tile<BM, BS, NT>(as + g * BS, A_LD,
                                  xt + (ok ? (long long)next[g].x * BS : 0), ldx,
                                  ok ? valid_rows : 0, tid);
            copy_tile<BS, BS, NT>(bs + (TRANS_W ? g * BS : g * BS * B_LD), B_LD,
                                  w + (ok ? (long long)next[g].y * (BS * BS) : 0), BS,
                                  ok ? BS : 0, tid);
        }
        fetch(step + 1);
    };

#if USE_MMA
    constexpr int WM = BM / WARPS_M, WN = BS / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 8 == 0, "warp tile");
    const int warp = tid >> 5, lane = tid & 31;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    float acc[MI][NI][4];
    zero_fill<MI * NI * 4>(&acc[0][0][0]);
#else
    constexpr int TX = BS / SIMT_TN, TY = BM / SIMT_TM;
    const int tx = tid % TX, ty = tid / TX;
    float acc[SIMT_TM][SIMT_TN];
    zero_fill<SIMT_TM * SIMT_TN>(&acc[0][0]);
#endif

    cp_async_ring<STAGES>(nsteps, load_stage, [&](int buf) {
        const elem_t* as = As + buf * A_STAGE;
        const elem_t* bs = Bs + buf * B_STAGE;
#if USE_MMA
        warp_mma<MI, NI, KST, true, (bool)TRANS_W>(
            acc, as + wm * WM * A_LD, A_LD, bs + (TRANS_W ? wn * WN * B_LD : wn * WN), B_LD, lane);
#else
        // x @ W^T reads W's rows along k: neighbouring threads take neighbouring columns so
        // their 16-byte reads land in different banks.
        thread_fma<SIMT_TM, SIMT_TN, KST, true, (bool)TRANS_W>(
            acc, as, A_LD, ty, TY, bs, B_LD, TRANS_W ? tx : tx * SIMT_TN, TRANS_W ? TX : 1);
#endif
    });

#if USE_MMA
    constexpr int ACC_N = MI * NI * 4;
    float* accf = &acc[0][0][0];
#else
    constexpr int ACC_N = SIMT_TM * SIMT_TN;
    float* accf = &acc[0][0];
#endif
    if (slot >= 0 && !split_combine<ACC_N, NT>(accf, ws, slot, colinfo[j],
                                               counters + (long long)j * gridDim.y + blockIdx.y,
                                               *reinterpret_cast<int*>(smem_raw)))
        return;

    elem_t* yt = y + (long long)m0 * ldy + (long long)j * BS;
#if USE_MMA
    store_tiles<MI, NI>(yt, ldy, acc, wm * WM, wn * WN, valid_rows, alpha, beta, lane);
#else
#pragma unroll
    for (int i = 0; i < SIMT_TM; ++i) {
        const int r = ty + i * TY;
        if (r < valid_rows) {
#pragma unroll
            for (int q = 0; q < SIMT_TN; q += 2) {
                if (TRANS_W) {
                    store_one(yt + r * ldy + tx + q * TX, acc[i][q], alpha, beta);
                    store_one(yt + r * ldy + tx + (q + 1) * TX, acc[i][q + 1], alpha, beta);
                } else {
                    store_pair(yt + r * ldy + tx * SIMT_TN + q, acc[i][q], acc[i][q + 1], alpha, beta);
                }
            }
        }
    }
#endif
}
