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
// x: (M rows, K columns), row stride ldx elements, 16-byte aligned rows not required; hi, lo:
// (M, K), row stride ldo elements (a multiple of 4, so the planes' rows suit a tensor map).
// Grid-stride over the M x K elements; any grid, any block size.
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
    const long long n = (long long)M * K;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / K, c = i - r * K;
        unsigned h, l;
        split_tf32(__float_as_uint(__ldg(x + r * ldx + c)), h, l);
        hi[r * ldo + c] = __uint_as_float(h);
        lo[r * ldo + c] = __uint_as_float(l);
    }
}
