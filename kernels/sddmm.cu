// sddmm.cu: sampled dense-dense product (the weight gradient of y = x @ W).
//
//     out[b] = alpha * x[:, c*BS:(c+1)*BS]^T @ dy[:, k*BS:(k+1)*BS] + beta * out[b]
//
// for every stored block b = (c, k) of a layout.
// x: (M, R) elem_t, dy: (M, C) elem_t, unit stride in their last axes, 16-byte aligned rows.
// out: (nnzb, BS, BS) elem_t. When beta == 0, out is only written.
//
// Work list (built once per layout by cupy_bsparse/_gpu_ops.py): segment s = seg[s] =
// (c, first, count) covers blocks first .. first+count-1 (count <= NB) of block-row c;
// cols[b] is the block-column of block b. One CTA per segment reduces over all M rows, MK rows
// per pipeline stage, loading x's column block once for all NB blocks of the segment.
//
// Parameters (prepended as #defines by cupy_bsparse/compiler.py):
//   DTYPE_ID  see common.cuh     BS  block size     NB  blocks per CTA
//   MK        rows of M per stage                   STAGES  pipeline depth (>= 2)
//   tensor cores: WARPS_M x WARPS_N warps tile the RB x (NB*BS) output
//   CUDA cores:   each thread owns SIMT_TM x SIMT_TN outputs
#if BS == 8 && (DTYPE_ID == 1 || DTYPE_ID == 2)
// 16-bit bs 8: the inline-PTX shared-address conversion schedules better here (M = 4096:
// 4.2 ms against 5.9 ms with the compiler's; every other case is faster with the compiler's).
#define SMEM_CVTA_PTX
#endif
#include "common.cuh"

#if USE_MMA
#define RB (BS < 16 ? 16 : BS)  // rows computed; block size 8 pads to one m16 tile
#else
#define RB BS
#endif
#define NC (NB * BS)
// An 8-element pad staggers rows so fragment reads (ldmatrix or scalar tf32) avoid bank conflicts.
#define X_LD (RB + 8)
#define D_LD (NC + 8)
#define X_STAGE (MK * X_LD)
#define D_STAGE (MK * D_LD)

#if USE_MMA
#define NT (WARPS_M * WARPS_N * 32)
#else
#define NT ((NC / SIMT_TN) * (RB / SIMT_TM))
#endif

extern "C" __global__ void __launch_bounds__(NT)
bsmm_sddmm(const elem_t* __restrict__ x, long long ldx, const elem_t* __restrict__ dy,
           long long ldy, const int4* __restrict__ seg, const int* __restrict__ cols,
           elem_t* __restrict__ out, int M, float alpha, float beta)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    elem_t* Xs = reinterpret_cast<elem_t*>(smem_raw);
    elem_t* Ds = Xs + STAGES * X_STAGE;
    const int tid = threadIdx.x;
    const int4 sg = __ldg(seg + blockIdx.x);
    const int c = sg.x, first = sg.y, cnt = sg.z;
    const int nsteps = (M + MK - 1) / MK;

    if (RB > BS) {
        // Columns BS..RB-1 of the x tiles are never loaded: keep them zero.
        for (int i = tid; i < STAGES * X_STAGE; i += NT) Xs[i] = from_f32(0.f);
        __syncthreads();
    }

    int kb[NB];
#pragma unroll
    for (int g = 0; g < NB; ++g) kb[g] = g < cnt ? __ldg(cols + first + g) : 0;

    auto load_stage = [&](int buf, int step) {
        const int m = step * MK;
        const int valid = min(MK, M - m);
        copy_tile<MK, BS, NT>(Xs + buf * X_STAGE, X_LD, x + (long long)m * ldx + (long long)c * BS,
                              ldx, valid, tid);
#pragma unroll
        for (int g = 0; g < NB; ++g)
            copy_tile<MK, BS, NT>(Ds + buf * D_STAGE + g * BS, D_LD,
                                  dy + (long long)m * ldy + (long long)kb[g] * BS, ldy,
                                  g < cnt ? valid : 0, tid);
    };

#if USE_MMA
    constexpr int WM = RB / WARPS_M, WN = NC / WARPS_N, MI = WM / 16, NI = WN / 8;
    static_assert(WM % 16 == 0 && WN % 8 == 0, "warp tile");
    const int warp = tid >> 5, lane = tid & 31;
    const int wm = warp % WARPS_M, wn = warp / WARPS_M;
    float acc[MI][NI][4];
    zero_fill<MI * NI * 4>(&acc[0][0][0]);
#else
    constexpr int TX = NC / SIMT_TN;
    const int tx = tid % TX, ty = tid / TX;
    float acc[SIMT_TM][SIMT_TN];
    zero_fill<SIMT_TM * SIMT_TN>(&acc[0][0]);
#endif

    cp_async_ring<STAGES>(nsteps, load_stage, [&](int buf) {
        const elem_t* xs = Xs + buf * X_STAGE;
        const elem_t* ds = Ds + buf * D_STAGE;
#if USE_MMA
        warp_mma<MI, NI, MK, false, false>(acc, xs + wm * WM, X_LD, ds + wn * WN, D_LD, lane);
#else
        thread_fma<SIMT_TM, SIMT_TN, MK, false, false>(acc, xs, X_LD, ty * SIMT_TM, 1, ds, D_LD,
                                                       tx * SIMT_TN, 1);
#endif
    });

#if USE_MMA
    const int gr = lane >> 2, tc = (lane & 3) * 2;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int i = wm * WM + mi * 16 + gr + h * 8;
            if (i >= BS) continue;
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) {
                const int n = wn * WN + ni * 8 + tc;
                const int g = n / BS;
                if (g < cnt)
                    store_pair(out + ((long long)(first + g) * BS + i) * BS + n % BS,
                               acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], alpha, beta);
            }
        }
    }
#else
#pragma unroll
    for (int ii = 0; ii < SIMT_TM; ++ii) {
        const int i = ty * SIMT_TM + ii;
#pragma unroll
        for (int q = 0; q < SIMT_TN; q += 2) {
            const int n = tx * SIMT_TN + q;
            const int g = n / BS;
            if (g < cnt)
                store_pair(out + ((long long)(first + g) * BS + i) * BS + n % BS,
                           acc[ii][q], acc[ii][q + 1], alpha, beta);
        }
    }
#endif
}
