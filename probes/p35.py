"""Probe 35: the event-timing floor of one launch (docs/perf-notes.md v35).

bench.time_cuda brackets each call by two CUDA events. At M = 64 a 16-bit bs 64 product takes
about 26 us by events and 23 us by Nsight Compute's gpu__time_duration (one launch, v35), so
the launch itself is a tenth of the time the E 0.8 target allows (22.3 us). This times kernels
that do nothing but start and end, shaped as the stream kernel's launch (264 CTAs of 160 threads
with 80 KB of dynamic shared memory, 132 CTAs with 198 KB) and a 1-CTA one, the same way.

    PYTHONPATH=.:probes python probes/p35.py"""
import cupy

from _common import say
from cupy_bsparse import bench

say(bench.gpu_name())
SRC = r'''extern "C" __global__ void nothing(int* p) {
    extern __shared__ int s[];
    if (p != nullptr && threadIdx.x == 0) s[0] = p[blockIdx.x];
}'''
fn = cupy.RawKernel(SRC, "nothing")
buf = cupy.zeros(1024, cupy.int32)
for ctas, threads, smem in ((1, 32, 0), (264, 160, 80 * 1024), (132, 160, 198 * 1024),
                            (528, 160, 48 * 1024)):
    if smem > 48 * 1024:
        fn.max_dynamic_shared_size_bytes = smem
    t = bench.time_cuda(lambda: fn((ctas,), (threads,), (buf,), shared_mem=max(smem, 16)), [()], 5, 50)
    say(f"{ctas} CTAs x {threads} threads, {smem // 1024} KB dynamic shared: {t * 1000:.2f} us a launch")
