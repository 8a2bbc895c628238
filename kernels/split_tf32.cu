// split_tf32.cu: x's 3xTF32 planes in one elementwise pass (float32, ahead of a dsd product).
//
//     hi[r][c], lo[r][c] = split_tf32(x[r][c])        (tf32x3.cuh: hi = x rounded to TF32,
//                                                      lo = x - hi; the same bits the kernels'
//                                                      in-register split gives)
//
// The float32 dsd kernels split every x fragment they load, once per stored block that uses
// it (dsd_grouped_tma.cu, float32 bs 8: 80 of a block's 158 warp instructions). With XLO 1
// they take x's hi plane as x and its lo plane by a second tensor map instead, so a block's
// x fragments are loads alone; this pass pays one split per element of x, about M * K_in / 32
// warp instructions times 6, and M * K_in * 8 bytes of writes (docs/perf-notes.md v18).
//
// x: (M rows, K columns), row stride ldx elements; hi, lo: (M, K), row stride ldo elements (a
// multiple of 4, so the planes' rows suit a tensor map). Grid: (column blocks, row blocks), any
// block size; each CTA strides over rows blockIdx.y, blockIdx.y + gridDim.y, ... and each
// thread over columns (32-bit indices within a row: no 64-bit division per element).
// Parameters (#defines): DTYPE_ID (4).
#include "common.cuh"

#if DTYPE_ID != 4
#error "split_tf32.cu splits float32 for 3xTF32 (DTYPE_ID 4)"
#endif
#include "tf32x3.cuh"

extern "C" __global__ void bsmm_split_tf32(const float* __restrict__ x, long long ldx,
                                           float* __restrict__ hi, float* __restrict__ lo,
                                           long long ldo, int M, int K)
{
    for (int r = blockIdx.y; r < M; r += gridDim.y) {
        const float* xr = x + (long long)r * ldx;
        float* hr = hi + (long long)r * ldo;
        float* lr = lo + (long long)r * ldo;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < K; c += gridDim.x * blockDim.x) {
            unsigned h, l;
            split_tf32(__float_as_uint(__ldg(xr + c)), h, l);
            hr[c] = __uint_as_float(h);
            lr[c] = __uint_as_float(l);
        }
    }
}
