// coarse_blocks.cu: stored BS x BS blocks copied out of the quadrants of 2BS x 2BS blocks
// (the weight gradient on a coarsened layout, docs/perf-notes.md v49).
//
//     out[b] = coarse[sub[b] >> 2][quadrant sub[b] & 3] + beta * out[b]     (sub[b] >= 0)
//     out[b] = rest[-1 - sub[b]] + beta * out[b]                          (sub[b] < 0)
//
// A layout whose neighbouring block-rows and -columns hold the same blocks (small world) is
// dense enough in 2 x 2 groups that the 2BS weight gradient over its coarsened layout, plus
// this copy, beats its own BS one (16-bit bs 32 on bs 64's wgmma kernel, float32 bs 8 on bs
// 16's). `coarse`: (ncoarse, 2BS, 2BS) row-major, as sddmm writes it; quadrant q is rows
// (q >> 1) * BS and columns (q & 1) * BS of its block. `rest`: (nrest, BS, BS), the blocks of
// groups too sparse to coarsen, from the direct kernel (a "hybrid" plan; unread without them).
// `out`: (nnzb, BS, BS). `sub`: (nnzb,) int32, coarse index * 4 + quadrant, or -1 - the rest's
// index (_work_lists.coarse_table). `out` is never read when beta == 0 (a poisoned output
// cannot leak in); otherwise the sum is taken in float32 (16-bit: coarse and rest hold
// alpha * x^T dy already rounded to 16 bits, so the result is rounded once more than the
// direct kernels').
//
// Each thread moves 16 bytes; any grid of 1-D CTAs covering nnzb * BS * BS * sizeof(elem) / 16
// threads. Parameters (#defines): DTYPE_ID (0: float32, 1, 2), BS (a row of whole 16-byte
// vectors: a multiple of 4 for float32, of 8 for 16-bit).
#include "common.cuh"

#if DTYPE_ID == 3 || DTYPE_ID == 4
#error "coarse_blocks.cu takes float32 data as DTYPE_ID 0"
#endif
#if (BS * 2 * (1 + F32_DATA)) % 16 != 0
#error "coarse_blocks.cu needs rows of whole 16-byte vectors"
#endif

extern "C" __global__ void bsmm_coarse_blocks(const uint4* __restrict__ coarse,
                                              const uint4* __restrict__ rest,
                                              const int* __restrict__ sub,
                                              uint4* __restrict__ out, int nnzb, float beta)
{
    constexpr int V = BS * (int)sizeof(elem_t) / 16;     // 16-byte vectors in a block's row
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)nnzb * (BS * V)) return;
    const int b = (int)(t / (BS * V));
    const int r = (int)((t / V) % BS), v = (int)(t % V);
    const int s = __ldg(sub + b), q = s & 3;
    uint4 w;
    if (s >= 0) {
        w = __ldg(coarse + (long long)(s >> 2) * (4 * BS * V)
                  + (long long)((q >> 1) * BS + r) * (2 * V) + (q & 1) * V + v);
    } else {
        w = __ldg(rest + (long long)(-1 - s) * (BS * V) + r * V + v);
    }
    if (beta != 0.f) {
        const uint4 o = out[t];
        const unsigned* ow = reinterpret_cast<const unsigned*>(&o);
        unsigned* ww = reinterpret_cast<unsigned*>(&w);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#if F32_DATA
            ww[i] = __float_as_uint(__uint_as_float(ww[i]) + beta * __uint_as_float(ow[i]));
#else
            const float lo = to_f32((elem_t)(ww[i] & 0xffffu))
                             + beta * to_f32((elem_t)(ow[i] & 0xffffu));
            const float hi = to_f32((elem_t)(ww[i] >> 16)) + beta * to_f32((elem_t)(ow[i] >> 16));
            ww[i] = pack2(lo, hi);
#endif
        }
    }
    out[t] = w;
}
