// wgmma.cuh: warpgroup MMA (sm_90a only) on the swizzled TMA tiles of the stream kernels.
//
// A warpgroup (four consecutive warps, the first one's index a multiple of 4) issues
// wgmma.mma_async m64nNk16 with both operands read from shared memory by descriptor and a 64 x N
// float accumulator in registers: thread t of the group holds rows 16 * (t / 32) + (t % 32) / 4
// (+ 8) and, for each n8 group ni, the columns 8 * ni + 2 * (t % 4) (+ 1), in the order of an
// mma.sync m16n8 accumulator tile (acc[ni][0..3]), so common.cuh's store_tiles stores it.
//
// Tiles are the ones tma.cuh's copies land: rows of RB bytes (32, 64 or 128) with the RB-byte
// swizzle, each tile starting on the pattern's period (8 * RB bytes), so the descriptor's base
// offset is 0. In the PTX ISA's canonical layouts both majorness cases then need one stride, the
// 8-row group pitch (SBO = 8 * RB): K-major (rows are M or N, K contiguous: x's tiles; W^T's
// blocks) steps k16 by +32 bytes inside the swizzled row; MN-major (rows are K, N or M
// contiguous: W's blocks for x @ W, flag tnspB = 1; 16-bit types only) steps k16 by 16 rows.
// The MN extent of an MN-major tile is one swizzle atom (N * 2 bytes = RB), so LBO is unused.
// float32 (DTYPE_ID 4, 3xTF32: tf32x3.cuh): wgmma m64nNk8 .tf32 takes both operands K-major;
// A comes from registers (wgmma_m64k8_tf32: each warp of the group holds its 16 rows in the
// order of an mma.sync m16n8k8 .tf32 A fragment) and B by descriptor, stepping k8 by +32 bytes.
// Requires RB, DTYPE_ID (1 float16, 2 bfloat16, 4 float32).
#pragma once

#if DTYPE_ID != 1 && DTYPE_ID != 2 && DTYPE_ID != 4
#error "wgmma.cuh: 16-bit inputs or float32 as 3xTF32 only (DTYPE_ID 1, 2 or 4)"
#endif

// Descriptor of the tile at shared-window address `addr` (see the header).
__device__ __forceinline__ unsigned long long wgmma_desc(unsigned addr) {
    constexpr unsigned long long mode = RB == 128 ? 1 : (RB == 64 ? 2 : 3);
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | (1ull << 16)
           | ((unsigned long long)((8 * RB) >> 4) << 32) | (mode << 62);
}

// Order register accesses to the accumulators around asynchronous MMAs: the compiler may not
// move reads or writes of v across this point.
template <int N>
__device__ __forceinline__ void wgmma_pin(float* v) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(v[i]) :: "memory");
}
// Before the first wgmma of a batch: prior register writes to the accumulators are visible.
__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
// Wait until at most N of this warpgroup's committed batches are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory");
}

// Keep the A fragments of an asynchronous MMA in their registers until it completed (place
// after wgmma_wait, as wgmma_pin for the accumulators).
template <int N>
__device__ __forceinline__ void wgmma_pin_a(unsigned* v) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+r"(v[i]) :: "memory");
}

#if DTYPE_ID == 1
#define WGMMA_AB "f16.f16"
#else
#define WGMMA_AB "bf16.bf16"
#endif
#define WGMMA_D8(b) "+f"(d[b]), "+f"(d[b + 1]), "+f"(d[b + 2]), "+f"(d[b + 3]), \
                    "+f"(d[b + 4]), "+f"(d[b + 5]), "+f"(d[b + 6]), "+f"(d[b + 7])
#define WGMMA_W8(b) "=f"(d[b]), "=f"(d[b + 1]), "=f"(d[b + 2]), "=f"(d[b + 3]), \
                    "=f"(d[b + 4]), "=f"(d[b + 5]), "=f"(d[b + 6]), "=f"(d[b + 7])

// d (64 x N accumulator tile, N / 2 floats a thread) += A (64 x 16, descriptor da) *
// B (16 x N, descriptor db); TB = 1: B is MN-major; TA = 1: A is M-major (rows are K, M
// contiguous). N = 32 or 64.
template <int N, int TB, int TA = 0>
__device__ __forceinline__ void wgmma_m64k16(float* d, unsigned long long da, unsigned long long db) {
    static_assert(N == 32 || N == 64, "wgmma_m64k16: N = 32 or 64");
    if constexpr (N == 64) {
        asm volatile(
            "{ .reg .pred p; setp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n64k16.f32." WGMMA_AB
            " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18,"
            " %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1,"
            " %35, %34; }"
            : WGMMA_D8(0), WGMMA_D8(8), WGMMA_D8(16), WGMMA_D8(24)
            : "l"(da), "l"(db), "n"(TB), "n"(TA));
    } else {
        asm volatile(
            "{ .reg .pred p; setp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n32k16.f32." WGMMA_AB
            " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p,"
            " 1, 1, %19, %18; }"
            : WGMMA_D8(0), WGMMA_D8(8)
            : "l"(da), "l"(db), "n"(TB), "n"(TA));
    }
}
#if DTYPE_ID == 4
// d (64 x N accumulator tile) = (FRESH ? 0 : d) + A (64 x 8, TF32 fragments a in registers) *
// B (8 x N, K-major, descriptor db). N = 16, 32 or 64.
template <int N, int FRESH>
__device__ __forceinline__ void wgmma_m64k8_tf32(float* d, const unsigned (&a)[4], unsigned long long db) {
    static_assert(N == 16 || N == 32 || N == 64, "wgmma_m64k8_tf32: N = 16, 32 or 64");
#define WGMMA_TF32_N64 \
    "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32" \
    " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18," \
    " %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}," \
    " {%32, %33, %34, %35}, %36, p, 1, 1; }"
    if constexpr (N == 64 && FRESH) {
        // write-only accumulators: d's old values need not stay live up to here
        asm volatile("{ .reg .pred p; setp.ne.b32 p, 0, 0;\n" WGMMA_TF32_N64
                     : WGMMA_W8(0), WGMMA_W8(8), WGMMA_W8(16), WGMMA_W8(24)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    } else if constexpr (N == 64) {
        asm volatile("{ .reg .pred p; setp.ne.b32 p, 1, 0;\n" WGMMA_TF32_N64
                     : WGMMA_D8(0), WGMMA_D8(8), WGMMA_D8(16), WGMMA_D8(24)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    } else if constexpr (N == 32) {
        asm volatile(
            "{ .reg .pred p; setp.ne.b32 p, %21, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32"
            " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15},"
            " {%16, %17, %18, %19}, %20, p, 1, 1; }"
            : WGMMA_D8(0), WGMMA_D8(8)
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(FRESH ? 0 : 1));
    } else {
        asm volatile(
            "{ .reg .pred p; setp.ne.b32 p, %13, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n16k8.f32.tf32.tf32"
            " {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1; }"
            : WGMMA_D8(0)
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(FRESH ? 0 : 1));
    }
}
#undef WGMMA_TF32_N64

// 3xTF32 over 16 deep into the fresh tile d, in tf32x3.cuh's order (the lo * hi and hi * lo
// products of both 8-deep steps, then the hi * hi ones: a chain of 6 truncating adds): A's split
// fragments ah[k], al[k] of 8-deep steps k = 0, 1 and B's descriptors b_desc(k, lo) (lo false:
// the hi tile), taken at each wgmma.
template <int N, class D>
__device__ __forceinline__ void wgmma_3xtf32_k16(float* d, const unsigned (*ah)[4], const unsigned (*al)[4],
                                                 D b_desc) {
    wgmma_m64k8_tf32<N, 1>(d, al[0], b_desc(0, false));
    wgmma_m64k8_tf32<N, 0>(d, ah[0], b_desc(0, true));
    wgmma_m64k8_tf32<N, 0>(d, al[1], b_desc(1, false));
    wgmma_m64k8_tf32<N, 0>(d, ah[1], b_desc(1, true));
    wgmma_m64k8_tf32<N, 0>(d, ah[0], b_desc(0, false));
    wgmma_m64k8_tf32<N, 0>(d, ah[1], b_desc(1, false));
}
#endif
#undef WGMMA_D8
#undef WGMMA_W8
