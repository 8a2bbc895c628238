"""Probe 32: the L2 -> shared memory rate of TMA tile copies by box row width (docs/perf-notes.md
v33). 16-bit bs 32 x @ W moves 6.3 TB/s of tiles at M = 4096 (x's 512 x 32 tiles: 64-byte
rows), bs 64 7.3 TB/s (128-byte rows). Does a 64-byte row cap the rate below a 128-byte one?

One thread a CTA copies boxes of a 16 MB L2-resident fp16 array (4096 x 2048) into a ring of
STAGES buffers, only waiting for each buffer's previous copy to land (no consumers), at random
box positions, evict_last; 1-3 CTAs an SM. TB/s = bytes copied / kernel time (CUDA events,
median of 5 after a warm-up launch).

    PYTHONPATH=. python probes/p32.py"""
import os
import sys

import cupy
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import say  # noqa: E402
from cupy_bsparse import _tensor_maps, bench  # noqa: E402

KERNELS = os.path.join(os.path.dirname(__file__), "..", "kernels")

SRC = r"""
extern "C" __global__ void tma_rate(const __grid_constant__ TensorMap map, int tiles_r, int tiles_c,
                                    int iters, unsigned seed)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const unsigned raw = (unsigned)__cvta_generic_to_shared(smem_raw);
    const unsigned a0 = (raw + 1023) & ~1023u;
    const unsigned bar = a0 + STAGES * BYTES;
    if (threadIdx.x < STAGES) mbar_init(bar + 8 * threadIdx.x, 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    if (threadIdx.x != 0) return;
    const unsigned long long pol = l2_policy<1>();
    unsigned h = seed ^ (blockIdx.x * 2654435761u);
    for (int i = 0; i < iters; ++i) {
        const int s = i % STAGES;
        if (i >= STAGES) mbar_wait(bar + 8 * s, ((i / STAGES) - 1) & 1);
        mbar_arrive_expect_tx(bar + 8 * s, BYTES);
        h = h * 1664525u + 1013904223u;
        const int tr = (h >> 4) % tiles_r, tc = (h >> 16) % tiles_c;
#pragma unroll
        for (int b = 0; b < NBOX; ++b)
            tma_2d(a0 + s * BYTES + b * (BYTES / NBOX), &map, tc * BOXC, (tr * NBOX + b) * BOXR,
                   bar + 8 * s, pol);
    }
    for (int i = max(0, iters - STAGES); i < iters; ++i)
        mbar_wait(bar + 8 * (i % STAGES), (i / STAGES) & 1);
}
"""


def source(row_bytes, box_rows, nbox, stages):
    tma = open(os.path.join(KERNELS, "tma.cuh")).read()
    defs = (f"#define RB {row_bytes}\n#define BOXR {box_rows}\n#define BOXC {row_bytes // 2}\n"
            f"#define NBOX {nbox}\n#define STAGES {stages}\n"
            f"#define BYTES {row_bytes * box_rows * nbox}\n")
    return defs + tma + SRC


def rate(x, row_bytes, box_rows, nbox, stages, per_sm, iters=600):
    fn = cupy.RawModule(code=source(row_bytes, box_rows, nbox, stages),
                        options=("-std=c++17",)).get_function("tma_rate")
    smem = stages * row_bytes * box_rows * nbox + 1024 + 8 * stages
    fn.max_dynamic_shared_size_bytes = smem
    rows, cols = x.shape
    tmap = _tensor_maps.tile_map(x.data.ptr, rows, cols, cols * 2, 2, box_rows, row_bytes // 2)
    sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
    grid = sms * per_sm
    tr, tc = rows // (box_rows * nbox), cols // (row_bytes // 2)
    args = (tmap, np.int32(tr), np.int32(tc), np.int32(iters), np.uint32(12345))
    t = bench.time_cuda(lambda: fn((grid,), (32,), args, shared_mem=smem), [()], 1, 5)
    tb = grid * iters * row_bytes * box_rows * nbox / (t * 1e-3) / 1e12
    return t, tb


if __name__ == "__main__":
    say(bench.gpu_name())
    x = cupy.ones((4096, 2048), dtype=cupy.float16)
    # bytes a CTA keeps in flight = stages x KB: 32 KB to 192 KB an SM
    for per_sm, stages, kb in ((1, 2, 16), (2, 2, 16), (2, 3, 16), (2, 4, 16), (2, 3, 32),
                               (1, 6, 32)):
        for row_bytes in (64, 128):
            box_rows = min(256, kb * 1024 // row_bytes)
            nbox = kb * 1024 // (row_bytes * box_rows)
            t, tb = rate(x, row_bytes, box_rows, nbox, stages, per_sm)
            say(f"{per_sm} CTAs an SM, {stages} stages of {kb} KB ({per_sm * stages * kb} KB an "
                f"SM), {row_bytes}-byte rows ({nbox} x {box_rows} rows): {t:.4f} ms, "
                f"{tb:.2f} TB/s")
