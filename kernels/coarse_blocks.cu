// coarse_blocks.cu: stored BS x BS blocks copied out of the quadrants of 2BS x 2BS blocks
// (16-bit; the weight gradient on a coarsened layout, docs/perf-notes.md v49).
//
//     out[b] = coarse[sub[b] >> 2][quadrant sub[b] & 3] + beta * out[b]
//
// A layout whose neighbouring block-rows and -columns hold the same blocks (small world) is
// dense enough in 2 x 2 groups that the bs 64 weight gradient (wgmma) over its coarsened
// layout, plus this copy, beats its own bs 32 one. `coarse`: (ncoarse, 2BS, 2BS) row-major, as
// sddmm writes it; quadrant q is rows (q >> 1) * BS and columns (q & 1) * BS of its block.
// `out`: (nnzb, BS, BS). `sub`: (nnzb,) int32, coarse index * 4 + quadrant. `out` is never read
// when beta == 0 (a poisoned output cannot leak in); otherwise the sum is taken in float32 and
// rounded once more (coarse holds alpha * x^T dy already rounded to 16 bits).
//
// Each thread moves 16 bytes (8 elements); any grid of 1-D CTAs covering nnzb * BS * BS / 8
// threads. Parameters (#defines): DTYPE_ID (1, 2), BS (16, 32).
#include "common.cuh"

#if F32_DATA
#error "coarse_blocks.cu copies 16-bit blocks (DTYPE_ID 1 or 2)"
#endif
#if BS % 16 != 0
#error "coarse_blocks.cu needs rows of whole 16-byte vectors (BS a multiple of 16)"
#endif

extern "C" __global__ void bsmm_coarse_blocks(const uint4* __restrict__ coarse,
                                              const int* __restrict__ sub,
                                              uint4* __restrict__ out, int nnzb, float beta)
{
    constexpr int V = BS / 8;                 // 16-byte vectors in a block's row
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)nnzb * (BS * V)) return;
    const int b = (int)(t / (BS * V));
    const int r = (int)(t / V) % BS, v = (int)(t % V);
    const int s = __ldg(sub + b), q = s & 3;
    const long long src = (long long)(s >> 2) * (4 * BS * V)
                          + (long long)((q >> 1) * BS + r) * (2 * V) + (q & 1) * V + v;
    uint4 w = __ldg(coarse + src);
    if (beta != 0.f) {
        const uint4 o = out[t];
        const unsigned* ow = reinterpret_cast<const unsigned*>(&o);
        unsigned* ww = reinterpret_cast<unsigned*>(&w);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float lo = to_f32((elem_t)(ww[i] & 0xffffu)) + beta * to_f32((elem_t)(ow[i] & 0xffffu));
            const float hi = to_f32((elem_t)(ww[i] >> 16)) + beta * to_f32((elem_t)(ow[i] >> 16));
            ww[i] = pack2(lo, hi);
        }
    }
    out[t] = w;
}
