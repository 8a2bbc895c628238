// dsd_grouped.cu: dense x block-sparse -> dense, with x tiles shared across block-columns.
//
//     y = alpha * x @ op(W) + beta * y        op(W) = W (TRANS_W 0) or W^T (TRANS_W 1)
//
// Same operands and contract as dsd.cu. The difference is the work unit: a CTA owns S adjacent
// output block-columns (a group) and one BM-row tile of x, and walks the union of the group's
// input block indices c in increasing order. Each x tile x[rows, c-block] is loaded once and
// multiplied with every stored block (c, j) of the group, instead of once per block: for a
// random layout at density d, that divides x's L2 traffic by S*d / (1 - (1-d)^S).
//
// Look-up table (built once per layout by cupy_bsparse/_gpu_ops.py): group g takes entries
// ent[gptr[g] .. gptr[g+1]), each int4 (c, mask, first, 0): bit s of mask says block-column
// g*S + s has a block at c, whose stored block ids are blk[first ..] in increasing s.
//
// Grid: (ceil(N / (S*BS)), ceil(M / BM)). Tensor cores only (DTYPE_ID 1, 2, 3).
// Parameters: BS, DTYPE_ID, TRANS_W, BM, S, G (entries per pipeline stage), STAGES, WARPS
// (warps split the BM rows; each warp owns all S*BS columns of its rows), MINB (CTAs per SM
// the register allocation must allow).
#include "common.cuh"

#define KST (G * BS)             // reduction depth of one stage
#define NCOL (S * BS)            // output columns per CTA
#if DTYPE_ID == 3
#define A_LD (KST + 4)
#define P_LD (TRANS_W ? KST + 4 : (BS == 8 ? 8 : BS + 8))
#else
#define PAD16(n) ((n) * 2 >= 32 ? (n) + 8 : (n))
#define A_LD PAD16(KST)
#define P_LD (TRANS_W ? PAD16(KST) : PAD16(BS))
#endif
// One slot's panel of W: the KST x BS slice of op(W) for block-column s, stored [k][n]
// (TRANS_W 0) or [n][k] (TRANS_W 1).
#define PANEL ((TRANS_W ? BS : KST) * P_LD)
#define A_STAGE (BM * A_LD)
#define B_STAGE (S * PANEL)
#define NT (WARPS * 32)
// Two blocks of size 8 make one k16 tensor-core step, so a slot needs zeros where only its
// partner entry has a block.
#define PAIRED (BS < MMA_K)

extern "C" __global__ void __launch_bounds__(NT, MINB)
bsmm_dsd_grouped(const elem_t* __restrict__ x, long long ldx, const elem_t* __restrict__ w,
                 const int* __restrict__ gptr, const int4* __restrict__ ent,
                 const int* __restrict__ blk, elem_t* __restrict__ y, long long ldy, int M,
                 int N, float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    elem_t* As = reinterpret_cast<elem_t*>(smem_raw);
    elem_t* Bs = As + STAGES * A_STAGE;
    __shared__ unsigned smask[STAGES][G];
    const int tid = threadIdx.x;
    const int grp = blockIdx.x;
    const int m0 = blockIdx.y * BM;
    const int e0 = gptr[grp], e1 = gptr[grp + 1];
    const int nsteps = (e1 - e0 + G - 1) / G;
    const int valid_rows = min(BM, M - m0);
    const elem_t* xt = x + (long long)m0 * ldx;
    constexpr int VEC = 16 / sizeof(elem_t);
    constexpr int BCH = BS * BS / VEC;   // 16-byte chunks in one W block

    auto load_stage = [&](int buf, int step) {
        elem_t* as = As + buf * A_STAGE;
        elem_t* bs = Bs + buf * B_STAGE;
        int4 en[G];
#pragma unroll
        for (int gi = 0; gi < G; ++gi) {
            const int e = e0 + step * G + gi;
            en[gi] = e < e1 ? __ldg(ent + e) : make_int4(0, 0, 0, 0);
            copy_tile<BM, BS, NT>(as + gi * BS, A_LD, xt + (long long)en[gi].x * BS, ldx,
                                  e < e1 ? valid_rows : 0, tid);
        }
#pragma unroll
        for (int gi = 0; gi < G; ++gi)
            if (tid == gi) smask[buf][gi] = (unsigned)en[gi].y;
        // W blocks: slot s of entry gi goes to rows (cols for TRANS_W) gi*BS.. of panel s.
#pragma unroll
        for (int gi = 0; gi < G; ++gi) {
            const unsigned m = (unsigned)en[gi].y;
            const unsigned need = PAIRED ? m | (unsigned)en[gi ^ 1].y : m;
#pragma unroll
            for (int i = tid; i < S * BCH; i += NT) {
                const int q = i % BCH, s = i / BCH;
                if (!((need >> s) & 1u)) continue;
                const bool have = (m >> s) & 1u;
                const int b = have ? __ldg(blk + en[gi].z + __popc(m & ((1u << s) - 1u))) : 0;
                const int r = q / (BS / VEC), cq = q % (BS / VEC);   // block row, 16-byte chunk
                elem_t* dst = bs + s * PANEL +
                              (TRANS_W ? r * P_LD + gi * BS + cq * VEC : (gi * BS + r) * P_LD + cq * VEC);
                cp_async16(dst, have ? w + (long long)b * (BS * BS) + q * VEC : w, have ? 16 : 0);
            }
        }
    };

    constexpr int WM = BM / WARPS, MI = WM / 16, NB = BS / 8;   // n8 tiles per block
    static_assert(WM % 16 == 0, "warp tile");
    const int warp = tid >> 5, lane = tid & 31;
    float acc[MI][S * NB][4];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < S * NB; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.f;

#pragma unroll
    for (int st = 0; st < STAGES - 1; ++st) {
        if (st < nsteps) load_stage(st, st);
        cp_async_commit();
    }
    for (int step = 0; step < nsteps; ++step) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        const int buf = step % STAGES;
        unsigned masks[G];
#pragma unroll
        for (int gi = 0; gi < G; ++gi) masks[gi] = smask[buf][gi];
        const int nxt = step + STAGES - 1;
        if (nxt < nsteps) load_stage(nxt % STAGES, nxt);
        cp_async_commit();
        const elem_t* as = As + buf * A_STAGE + warp * WM * A_LD;
        const elem_t* bsm = Bs + buf * B_STAGE;
#pragma unroll
        for (int kk = 0; kk < KST; kk += MMA_K) {
            // Entries covered by this k step: one, or a pair for block size 8.
            const unsigned live = PAIRED ? (masks[kk / BS] | masks[kk / BS + 1]) : masks[kk / BS];
            if (!live) continue;
#pragma unroll
            for (int s = 0; s < S; ++s) {
                if (!((live >> s) & 1u)) continue;
                // acc[:, s*NB .. s*NB+NB) += A[rows, kk:kk+MMA_K] * panel_s[kk:kk+MMA_K, :]
                // Copies in and out of the slot's accumulators vanish once the loops unroll.
                float part[MI][NB][4];
#pragma unroll
                for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NB; ++ni)
#pragma unroll
                        for (int q = 0; q < 4; ++q) part[mi][ni][q] = acc[mi][s * NB + ni][q];
                const elem_t* panel = bsm + s * PANEL;
                warp_mma<MI, NB, MMA_K, true, (bool)TRANS_W>(
                    part, as + kk, A_LD, TRANS_W ? panel + kk : panel + kk * P_LD, P_LD, lane);
#pragma unroll
                for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NB; ++ni)
#pragma unroll
                        for (int q = 0; q < 4; ++q) acc[mi][s * NB + ni][q] = part[mi][ni][q];
            }
        }
    }

    const int gr = lane >> 2, tc = (lane & 3) * 2;
    const int n0 = grp * NCOL;
    elem_t* yt = y + (long long)m0 * ldy + n0;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
        const int r = warp * WM + mi * 16 + gr;
#pragma unroll
        for (int ni = 0; ni < S * NB; ++ni) {
            const int c = ni * 8 + tc;
            if (n0 + c >= N) continue;   // the last group may be partial
            if (r < valid_rows) store_pair(yt + r * ldy + c, acc[mi][ni][0], acc[mi][ni][1], alpha, beta);
            if (r + 8 < valid_rows) store_pair(yt + (r + 8) * ldy + c, acc[mi][ni][2], acc[mi][ni][3], alpha, beta);
        }
    }
}
