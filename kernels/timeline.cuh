// timeline.cuh: per-step timestamps of a warp-specialised kernel, for probes (docs/perf-notes.md
// v20); compiled in only with TIMELINE > 0, so the shipped specialisations are unchanged.
//
// TIMELINE = the number of CTAs recorded: the first in launch order (blockIdx.y * gridDim.x +
// blockIdx.x < TIMELINE). Each has a
// record of TL_REC 64-bit words in the module's __device__ array `bsmm_timeline`, which the
// probe zeroes before a launch and reads after it (RawModule get_global_var):
//   [0] %globaltimer at the start, [1] at the end of the main loop (ns);
//   [2] %clock64 at the start,     [3] at the end of the main loop (SM cycles);
//   [4] %smid | steps << 32;
//   [8 + TL_FIELDS * k + f]: %clock64 at event f of step k (k < TL_STEPS), written by one lane;
//   the kernel names its events.
#pragma once

#ifndef TIMELINE
#define TIMELINE 0
#endif
#if TIMELINE
#define TL_STEPS 64
#define TL_FIELDS 6
#define TL_REC (8 + TL_FIELDS * TL_STEPS)
__device__ unsigned long long bsmm_timeline[TIMELINE * TL_REC];

__device__ __forceinline__ unsigned long long tl_clock() {
    unsigned long long c;
    asm volatile("mov.u64 %0, %%clock64;" : "=l"(c));
    return c;
}
__device__ __forceinline__ unsigned long long tl_gtime() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ unsigned tl_cta() { return blockIdx.y * gridDim.x + blockIdx.x; }
__device__ __forceinline__ bool tl_on() { return tl_cta() < TIMELINE; }
__device__ __forceinline__ unsigned long long* tl_rec() { return bsmm_timeline + tl_cta() * TL_REC; }
// Event f of step k, by the calling thread.
#define TL_MARK(k, f) do { if (tl_on() && (k) < TL_STEPS) tl_rec()[8 + TL_FIELDS * (k) + (f)] = tl_clock(); } while (0)
// The start (end = 0) or end (end = 1) of the CTA's main loop, with its SM and step count.
#define TL_SPAN(end, steps) do { if (tl_on()) { unsigned long long* r_ = tl_rec(); \
    r_[(end)] = tl_gtime(); r_[2 + (end)] = tl_clock(); \
    if (end) { unsigned s_; asm volatile("mov.u32 %0, %%smid;" : "=r"(s_)); \
               r_[4] = s_ | ((unsigned long long)(steps) << 32); } } } while (0)
#else
#define TL_MARK(k, f) do {} while (0)
#define TL_SPAN(end, steps) do {} while (0)
#endif
