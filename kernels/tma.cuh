// tma.cuh: TMA tile copies and mbarriers for the warp-specialised kernels (sm_90).
//
// Tiles are copied by cp.async.bulk.tensor with a tensor map (cupy_bsparse/_tensor_maps.py)
// whose swizzle equals the tile row, RB bytes (32, 64 or 128): 16-byte chunk q of row r lands at
// chunk q ^ SWZ(r), so eight rows read by one ldmatrix at the same logical chunk hit distinct
// banks. Tiles must start on a multiple of 8 * RB bytes (the pattern's period).
// Requires RB (bytes of one tile row) defined before the include.
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
// ---------------------------------------------------------------- producer/consumer ring
// N buffers, each with a `full` mbarrier (count `producers`, default 1: the producer's
// expect_tx, completed by the copies' bytes) at bar0 + 8 * s and an `empty` one (count: every
// consumer thread) at bar0 + 8 * (N + s). Producer and consumers each walk the ring with their
// own Ring.
template <int N>
struct Ring {
    unsigned bar0;
    int s = 0;
    unsigned phase = 0;
    __device__ explicit Ring(unsigned bars) : bar0(bars) {}
    // One thread, before __syncthreads: initialise the 2N barriers.
    __device__ static void init(unsigned bars, int tid, unsigned consumers, unsigned producers = 1) {
        if (tid < N) {
            mbar_init(bars + 8 * tid, producers);
            mbar_init(bars + 8 * (N + tid), consumers);
        }
    }
    __device__ unsigned full() const { return bar0 + 8 * s; }
    // Producer: wait until the consumers released this buffer's previous use (none for the first
    // N uses), announce `bytes` of copies on its full barrier, and return that barrier.
    __device__ unsigned acquire(int use, unsigned bytes) const {
        wait_empty(use);
        mbar_arrive_expect_tx(full(), bytes);
        return full();
    }
    // Producer: wait until the consumers released this buffer's previous use (none for the
    // first N uses).
    __device__ void wait_empty(int use) const {
        if (use >= N) mbar_wait(empty(), phase ^ 1);
    }
    __device__ unsigned empty() const { return bar0 + 8 * (N + s); }
    // Consumer: wait until this buffer's copies landed.
    __device__ void wait_full() const { mbar_wait(full(), phase); }
    // Consumer thread: done reading this buffer (release_to_tma).
    __device__ void release() const;
    __device__ void advance() { if (++s == N) { s = 0; phase ^= 1; } }
};

// (The copies' L2 policies come from common.cuh's l2_policy.)

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

// 1-D bulk copy of `bytes` (a multiple of 16) contiguous bytes from global `src` (16-byte
// aligned) to shared memory `dst`, counted on `bar`. `policy`: an L2 eviction policy.
__device__ __forceinline__ void bulk_1d(unsigned dst, const void* src, unsigned bytes, unsigned bar,
                                        unsigned long long policy) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
                 " [%0], [%1], %2, [%3], %4;"
                 :: "r"(dst), "l"(src), "r"(bytes), "r"(bar), "l"(policy) : "memory");
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
template <int N>
__device__ __forceinline__ void Ring<N>::release() const { release_to_tma(bar0 + 8 * (N + s)); }

// acc[MI][NI] += A^T B over the first KD rows of two swizzled tiles whose rows are the reduction
// index (A: x's column block, m contiguous; B: dy's, n contiguous), ldmatrix.trans for both.
// The warp's tile starts at column m0 of A and column n0 of B (multiples of 16). Every row a
// lane addresses is congruent to the lane mod 8, and the chunk indices its half-selects add
// to are even, so they fold into one XOR per operand. Requires elem_t of 16 bits.
template <int MI, int NI, int KD>
__device__ __forceinline__ void mma_tn_swizzled(float (&acc)[MI][NI][4], unsigned a_tile, int m0,
                                                unsigned b_tile, int n0, int lane) {
    const unsigned sw = SWZ(lane & 7);
    const unsigned sw_hi = sw ^ (lane >> 4), sw_mid = sw ^ ((lane >> 3) & 1);
    // A rows k + (lane & 7) + (lane >> 4) * 8, chunk (m0 + mi*16)/8 + (lane >> 3 & 1);
    // B rows k + (lane & 7) + (lane >> 3 & 1) * 8, chunk (n0 + ni*8)/8 + (lane >> 4).
    const unsigned a_base = a_tile + ((lane & 7) + (lane >> 4) * 8) * RB;
    const unsigned b_base = b_tile + ((lane & 7) + ((lane >> 3) & 1) * 8) * RB;
#pragma unroll
    for (int k = 0; k < KD; k += 16) {
        unsigned a[MI][4], b[NI][2];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
            ldsm_x4_t(a[mi], a_base + k * RB + ((((m0 / 8) + mi * 2) ^ sw_mid) << 4));
#pragma unroll
        for (int ni = 0; ni < NI; ni += 2) {
            unsigned r[4];
            ldsm_x4_t(r, b_base + k * RB + ((((n0 / 8) + ni) ^ sw_hi) << 4));
            b[ni][0] = r[0]; b[ni][1] = r[1]; b[ni + 1][0] = r[2]; b[ni + 1][1] = r[3];
        }
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma(acc[mi][ni], a[mi], b[ni]);
    }
}
