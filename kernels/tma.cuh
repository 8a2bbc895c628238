// tma.cuh: TMA tile copies and mbarriers for the warp-specialised kernels (sm_90).
//
// Tiles are copied by cp.async.bulk.tensor with a tensor map (cupy_bsparse/_tensor_maps.py)
// whose swizzle equals the tile row, RB bytes (32, 64 or 128): 16-byte chunk q of row r lands at
// chunk q ^ SWZ(r), so eight rows read by one ldmatrix at the same logical chunk hit distinct
// banks. Tiles must start on a multiple of 8 * RB bytes (the pattern's period).
// Requires RB defined by the including kernel.
#pragma once

// Chunk XOR of tile row r (TMA swizzle modes 32B/64B/128B: address bits [4, 4 + log2(RB/16))
// XOR bits [7, ...)).
#define SWZ(r) ((((r) * RB) >> 7) & (RB / 16 - 1))

struct __align__(64) TensorMap { unsigned long long opaque[16]; };

// ---------------------------------------------------------------- mbarriers (shared::cta)
__device__ __forceinline__ void mbar_init(unsigned a, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(a), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned a) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(a) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned a, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(a), "r"(bytes) : "memory");
}
// Wait until the phase with parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(unsigned a, unsigned parity) {
    unsigned done;
    do {
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;"
                     " selp.u32 %0, 1, 0, p; }" : "=r"(done) : "r"(a), "r"(parity) : "memory");
    } while (!done);
}
// 2-D TMA tile copy of the box at (column c0, row c1) of `map` into shared memory, counted on `bar`.
// `policy`: an L2 eviction policy from createpolicy.
__device__ __forceinline__ void tma_2d(unsigned dst, const TensorMap* map, int c0, int c1, unsigned bar,
                                       unsigned long long policy) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
                 " [%0], [%1, {%2, %3}], [%4], %5;"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(bar),
                    "l"(policy)
                 : "memory");
}

// 2-D TMA tile store of shared memory `src` (laid out with the map's swizzle) to the box at
// (column c0, row c1) of `map`, in this thread's bulk group.
__device__ __forceinline__ void tma_store_2d(const TensorMap* map, int c0, int c1, unsigned src) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];"
                 :: "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(src)
                 : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Wait until at most N of this thread's bulk groups still read their shared-memory source.
template <int N>
__device__ __forceinline__ void bulk_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;" :: "n"(N) : "memory");
}
// Wait until at most N of this thread's bulk groups are incomplete.
template <int N>
__device__ __forceinline__ void bulk_wait() { asm volatile("cp.async.bulk.wait_group %0;" :: "n"(N) : "memory"); }

// A consumer thread releases a buffer that the next TMA copy overwrites: the fence orders this
// thread's reads of it (generic proxy) before that write (async proxy); the mbarrier alone does
// not. Without it dsd_stream.cu computed a few block-columns per launch from overwritten tiles
// (docs/perf-notes.md, v5).
__device__ __forceinline__ void release_to_tma(unsigned empty_bar) {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    mbar_arrive(empty_bar);
}
