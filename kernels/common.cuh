// common.cuh: element types, PTX wrappers and warp/thread tile products shared by the
// block-sparse kernels. No CUDA headers: half and bfloat16 values are 16-bit patterns
// converted with PTX `cvt`, so NVRTC compiles this with no toolkit installed.
//
// Specialisation macros (prepended by cupy_bsparse/compiler.py):
//   DTYPE_ID   0: float32 on CUDA cores (FFMA)       1: float16 tensor cores
//              2: bfloat16 tensor cores               3: float32 data, TF32 tensor cores
//              4: float32 data, 3xTF32 tensor cores (float32 accuracy; tf32x3.cuh)
#pragma once

#define F32_DATA (DTYPE_ID == 0 || DTYPE_ID == 3 || DTYPE_ID == 4)
#if F32_DATA
typedef float elem_t;
#else
typedef unsigned short elem_t;
#endif

#define USE_MMA (DTYPE_ID != 0)
// split_tf32's clamp on by default; 0 is a probe knob (tf32x3.cuh says what it does).
// Defined here, for every kernel, so that one specialised without float32 parses it too.
#ifndef TF32_CLAMP
#define TF32_CLAMP 1
#endif
// Reduction depth of one tensor-core instruction.
#if DTYPE_ID == 3 || DTYPE_ID == 4
#define MMA_K 8
#else
#define MMA_K 16
#endif

// ---------------------------------------------------------------- conversions
__device__ __forceinline__ float to_f32(elem_t v) {
#if DTYPE_ID == 1
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
    return f;
#elif DTYPE_ID == 2
    return __uint_as_float(((unsigned)v) << 16);
#else
    return v;
#endif
}

__device__ __forceinline__ elem_t from_f32(float f) {
#if DTYPE_ID == 1
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#elif DTYPE_ID == 2
    unsigned short h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    return f;
#endif
}

#if !F32_DATA
// Two floats rounded to 16 bits and packed as one 32-bit word, a first (low half), b second.
__device__ __forceinline__ unsigned pack2(float a, float b) {
    return (unsigned)from_f32(a) | ((unsigned)from_f32(b) << 16);
}
#endif

// out = alpha * acc + beta * out, for two neighbouring elements. `out` is never read when
// beta == 0, so a poisoned (NaN) output cannot leak into the result.
__device__ __forceinline__ void store_pair(elem_t* p, float a0, float a1, float alpha, float beta) {
    float v0 = alpha * a0, v1 = alpha * a1;
#if F32_DATA
    if (beta != 0.f) { float2 o = *reinterpret_cast<float2*>(p); v0 += beta * o.x; v1 += beta * o.y; }
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
#else
    if (beta != 0.f) {
        unsigned o = *reinterpret_cast<unsigned*>(p);
        v0 += beta * to_f32((elem_t)(o & 0xffffu));
        v1 += beta * to_f32((elem_t)(o >> 16));
    }
    *reinterpret_cast<unsigned*>(p) = pack2(v0, v1);
#endif
}

__device__ __forceinline__ void store_one(elem_t* p, float a, float alpha, float beta) {
    float v = alpha * a;
    if (beta != 0.f) v += beta * to_f32(*p);
    *p = from_f32(v);
}

// ---------------------------------------------------------------- async copies
// The compiler's own conversion, so address arithmetic folds across it (v4: dsd.cu small-M
// bs 64 0.044 -> 0.038 ms, sddmm bs 16 1.30 -> 1.10 ms). A kernel defining SMEM_CVTA_PTX keeps
// the inline-PTX conversion, where that measured faster.
__device__ __forceinline__ unsigned smem_u32(const void* p) {
#ifdef SMEM_CVTA_PTX
    unsigned r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
#else
    return (unsigned)__cvta_generic_to_shared(p);
#endif
}

// 16-byte global->shared copy; src_bytes == 0 fills the destination with zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :: "r"(smem_u32(dst)), "l"(src), "r"(src_bytes));
}
// The same with the destination as a shared-window address (smem_u32).
__device__ __forceinline__ void cp_async16_s(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

// The cp.async ring both kernels run: NSTAGE shared-memory buffers. load(buf, step) issues the
// copies of pipeline step `step` into buffer `buf` (cp.async only); compute(buf) reads buffer
// `buf`. Steps 0 .. NSTAGE-2 are put in flight first; each iteration waits for the oldest step,
// refills the buffer freed by the previous iteration with step + NSTAGE - 1, then computes.
// Every step commits one group (possibly empty), so the wait count is the same throughout.
template <int NSTAGE, class Load, class Compute>
__device__ __forceinline__ void cp_async_ring(int nsteps, Load&& load, Compute&& compute) {
#pragma unroll
    for (int s = 0; s < NSTAGE - 1; ++s) {
        if (s < nsteps) load(s, s);
        cp_async_commit();
    }
    for (int step = 0; step < nsteps; ++step) {
        cp_async_wait<NSTAGE - 2>();
        __syncthreads();
        const int nxt = step + NSTAGE - 1;
        if (nxt < nsteps) load(nxt % NSTAGE, nxt);
        cp_async_commit();
        compute(step % NSTAGE);
    }
}

// a[0 .. N) = 0 (accumulator tiles, passed as &acc[0][0]...).
template <int N>
__device__ __forceinline__ void zero_fill(float* a) {
#pragma unroll
    for (int i = 0; i < N; ++i) a[i] = 0.f;
}

// Copy a ROWS x COLS tile (row-major, COLS * sizeof(elem_t) a multiple of 16 bytes) from global
// memory (row stride lds elements) to shared memory (row stride ldd), using all NT threads.
// Rows >= valid_rows are zero-filled and not read.
template <int ROWS, int COLS, int NT>
__device__ __forceinline__ void copy_tile(elem_t* dst, int ldd, const elem_t* src, long long lds,
                                          int valid_rows, int tid) {
    constexpr int VEC = 16 / sizeof(elem_t);
    constexpr int CPR = COLS / VEC;
    static_assert(COLS % VEC == 0, "tile rows must be whole 16-byte chunks");
#pragma unroll
    for (int i = tid; i < ROWS * CPR; i += NT) {
        const int r = i / CPR, q = i % CPR;
        const bool ok = r < valid_rows;
        const elem_t* s = ok ? src + r * lds + q * VEC : src;
        cp_async16(dst + r * ldd + q * VEC, s, ok ? 16 : 0);
    }
}

#if USE_MMA
// ---------------------------------------------------------------- tensor-core fragments
__device__ __forceinline__ void ldsm_x4(unsigned r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned r[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x2(unsigned r[2], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x2_t(unsigned r[2], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(smem_u32(p)));
}

// One 32-bit word from a shared-window address (smem_u32 + byte offset).
__device__ __forceinline__ unsigned lds32(unsigned a) {
    unsigned v;
    asm volatile("ld.shared.b32 %0, [%1];" : "=r"(v) : "r"(a));
    return v;
}

// The same with shared-window addresses (smem_u32 + byte offsets), so callers can keep one base
// register and let constant offsets fold into the instruction.
__device__ __forceinline__ void ldsm_x4(unsigned r[4], unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned r[4], unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsm_x2(unsigned r[2], unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
__device__ __forceinline__ void ldsm_x2_t(unsigned r[2], unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
__device__ __forceinline__ void ldsm_x1(unsigned& r, unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(a));
}
__device__ __forceinline__ void ldsm_x1_t(unsigned& r, unsigned a) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(a));
}
__device__ __forceinline__ void ldsm_x1(unsigned& r, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x1_t(unsigned& r, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(smem_u32(p)));
}

__device__ __forceinline__ unsigned to_tf32(float f) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f));
    return r;
}

// d += a * b for one m16 x n8 tile.
__device__ __forceinline__ void mma(float d[4], const unsigned a[4], const unsigned b[2]) {
#if DTYPE_ID == 1
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif DTYPE_ID == 2
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

#if DTYPE_ID == 1 || DTYPE_ID == 2
// d += a * b for one m16 x n8 tile with a reduction depth of 8 (one 8 x 8 block of 16-bit W).
__device__ __forceinline__ void mma_k8(float d[4], const unsigned a[2], unsigned b) {
#if DTYPE_ID == 1
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(b));
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(b));
#endif
}

// One small stored block (BS_ 8 or 16, 16-bit types) times the x columns it multiplies:
// acc[MI][BS_/8] += A (the warp's MI*16 rows x BS_ columns of x in shared memory) * op(B)
// (op(B) = B^T when TRANS). a: the lane's ldmatrix address of A's first 16 rows (BS_ 8: of its
// first 32, rows lane); consecutive 16-row blocks lie A_RB * 16 bytes apart, so a swizzled
// tile works as long as the swizzle repeats every 16 rows. b: the lane's address of B
// (small_block_b_lane).
template <int BS_, bool TRANS, int A_RB, int MI, int NI>
__device__ __forceinline__ void small_block_mma(float (&acc)[MI][NI][4], unsigned a, unsigned b) {
    static_assert(NI == BS_ / 8, "one n8 tile per 8 block columns");
    if constexpr (BS_ == 8) {
        unsigned bf;
        if (TRANS) ldsm_x1(bf, b);
        else ldsm_x1_t(bf, b);
#pragma unroll
        for (int mi = 0; mi < MI; mi += 2) {
            if (mi + 1 < MI) {
                unsigned r[4];   // rows mi*16 .. mi*16 + 31: two m16 A fragments
                ldsm_x4(r, a + mi * 16 * A_RB);
                mma_k8(acc[mi][0], r, bf);
                mma_k8(acc[mi + 1][0], r + 2, bf);
            } else {
                unsigned r[2];
                ldsm_x2(r, a + mi * 16 * A_RB);
                mma_k8(acc[mi][0], r, bf);
            }
        }
    } else {
        unsigned br[4];  // (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15)
        if (TRANS) ldsm_x4(br, b);
        else ldsm_x4_t(br, b);
        const unsigned b0[2] = {br[0], br[1]}, b1[2] = {br[2], br[3]};
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            unsigned r[4];
            ldsm_x4(r, a + mi * 16 * A_RB);
            mma(acc[mi][0], r, b0);
            mma(acc[mi][1], r, b1);
        }
    }
}

// Element offset of this lane's ldmatrix row in a stored block with a row stride of ld
// elements (small_block_mma's b).
template <int BS_, bool TRANS>
__device__ __forceinline__ int small_block_b_lane(int lane, int ld) {
    if (BS_ == 8) return (lane & 7) * ld;
    return TRANS ? ((lane & 7) + (lane >> 4) * 8) * ld + ((lane >> 3) & 1) * 8
                 : ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
}
#endif

#if DTYPE_ID == 4
#include "tf32x3.cuh"
#endif

// One warp accumulates acc[MI][NI] (an (MI*16) x (NI*8) tile) += A[rows, 0:KCH] * B[0:KCH, cols].
// A(m, k) lives at As[m*lda + k] when A_KCONTIG, else at As[k*lda + m]; B(k, n) lives at
// Bs[n*ldb + k] when B_KCONTIG, else at Bs[k*ldb + n]. As/Bs point at the warp's first row/col.
// Accumulator layout (PTX m16n8 C fragment): acc[..][0..1] row lane/4, cols 2*(lane%4)+{0,1};
// acc[..][2..3] the same 8 rows further down.
template <int MI, int NI, int KCH, bool A_KCONTIG, bool B_KCONTIG>
__device__ __forceinline__ void warp_mma(float (&acc)[MI][NI][4], const elem_t* As, int lda,
                                         const elem_t* Bs, int ldb, int lane) {
#if DTYPE_ID == 3 || DTYPE_ID == 4
    // TF32: operands rounded by cvt.rna; 3xTF32 (DTYPE_ID 4): float32 bit patterns, split in
    // mma_3xtf32 (tf32x3.cuh)
#if DTYPE_ID == 3
#define TF32_FRAG(v) to_tf32(v)
#else
#define TF32_FRAG(v) __float_as_uint(v)
#endif
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int k = 0; k < KCH; k += 8) {
        unsigned a[MI][4], b[NI][2];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            const int r = mi * 16 + g;
#define A_AT(m, kk) (A_KCONTIG ? As[(m) * lda + (kk)] : As[(kk) * lda + (m)])
            a[mi][0] = TF32_FRAG(A_AT(r, k + t));
            a[mi][1] = TF32_FRAG(A_AT(r + 8, k + t));
            a[mi][2] = TF32_FRAG(A_AT(r, k + t + 4));
            a[mi][3] = TF32_FRAG(A_AT(r + 8, k + t + 4));
#undef A_AT
        }
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
            const int c = ni * 8 + g;
            b[ni][0] = TF32_FRAG(B_KCONTIG ? Bs[c * ldb + k + t] : Bs[(k + t) * ldb + c]);
            b[ni][1] = TF32_FRAG(B_KCONTIG ? Bs[c * ldb + k + t + 4] : Bs[(k + t + 4) * ldb + c]);
        }
#if DTYPE_ID == 4
        mma_3xtf32<MI, NI>(acc, a, b);
#else
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma(acc[mi][ni], a[mi], b[ni]);
#endif
    }
#undef TF32_FRAG
#else
    if constexpr (KCH == 8) {
        // one 8-deep slice (an 8 x 8 block of W): m16n8k8, A rows 0-7 / 8-15 from lanes 0-15
        static_assert(KCH != 8 || NI == 1, "an 8-deep slice is one 8 x 8 block");
        unsigned b;
        if (B_KCONTIG) ldsm_x1(b, Bs + (lane & 7) * ldb);
        else ldsm_x1_t(b, Bs + (lane & 7) * ldb);
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            unsigned a[2];
            if (A_KCONTIG) ldsm_x2(a, As + (mi * 16 + (lane & 15)) * lda);
            else ldsm_x2_t(a, As + (lane & 7) * lda + mi * 16 + ((lane >> 3) & 1) * 8);
            mma_k8(acc[mi][0], a, b);
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < KCH; k += 16) {
        unsigned a[MI][4], b[NI][2];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            if (A_KCONTIG) {
                // matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
                ldsm_x4(a[mi], As + (mi * 16 + (lane & 15)) * lda + k + (lane >> 4) * 8);
            } else {
                ldsm_x4_t(a[mi], As + (k + (lane & 7) + (lane >> 4) * 8) * lda + mi * 16 + ((lane >> 3) & 1) * 8);
            }
        }
#pragma unroll
        for (int ni = 0; ni + 1 < NI; ni += 2) {
            unsigned r[4];
            if (B_KCONTIG) {
                ldsm_x4(r, Bs + (ni * 8 + (lane & 7) + (lane >> 4) * 8) * ldb + k + ((lane >> 3) & 1) * 8);
            } else {
                ldsm_x4_t(r, Bs + (k + (lane & 7) + ((lane >> 3) & 1) * 8) * ldb + ni * 8 + (lane >> 4) * 8);
            }
            b[ni][0] = r[0]; b[ni][1] = r[1]; b[ni + 1][0] = r[2]; b[ni + 1][1] = r[3];
        }
        if (NI & 1) {
            const int ni = NI - 1;
            const int l = lane & 15;
            if (B_KCONTIG) ldsm_x2(b[ni], Bs + (ni * 8 + (l & 7)) * ldb + k + (l >> 3) * 8);
            else ldsm_x2_t(b[ni], Bs + (k + (l & 7) + (l >> 3) * 8) * ldb + ni * 8);
        }
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma(acc[mi][ni], a[mi], b[ni]);
    }
#endif
}

#endif  // USE_MMA

#if !USE_MMA
// One thread accumulates acc[TM][TN] += A[rows, 0:KCH] * B[0:KCH, cols] in float32 FFMA.
// Rows are a0 + i*rstep (i < TM), columns b0 + j*cstep (j < TN). Layout flags as warp_mma.
// Reads are 16-byte vectors: along k when the operand is k-contiguous, else along m / n
// (then that operand's step must be 1 and its count a multiple of 4).
template <int TM, int TN, int KCH, bool A_KCONTIG, bool B_KCONTIG>
__device__ __forceinline__ void thread_fma(float (&acc)[TM][TN], const float* As, int lda, int a0,
                                           int rstep, const float* Bs, int ldb, int b0,
                                           int cstep) {
    static_assert(KCH % 4 == 0 && TN % 4 == 0, "vector width");
    static_assert(A_KCONTIG || TM % 4 == 0, "m-contiguous A is read 4 rows at a time");
    // Two-level summation: this chunk's KCH products go into a fresh partial that is then added
    // to acc, so a long reduction's rounding error grows with KCH + K/KCH terms, not K.
    float part[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) part[i][j] = 0.f;
#pragma unroll 1
    for (int k = 0; k < KCH; k += 4) {
        float a[TM][4], b[4][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            if (A_KCONTIG) {
                const float4 v = *reinterpret_cast<const float4*>(As + (a0 + i * rstep) * lda + k);
                a[i][0] = v.x; a[i][1] = v.y; a[i][2] = v.z; a[i][3] = v.w;
            } else if (i % 4 == 0) {
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    const float4 v = *reinterpret_cast<const float4*>(As + (k + kk) * lda + a0 + i);
                    a[i][kk] = v.x; a[i + 1][kk] = v.y; a[i + 2][kk] = v.z; a[i + 3][kk] = v.w;
                }
            }
        }
#pragma unroll
        for (int j = 0; j < TN; j += 4) {
            if (B_KCONTIG) {
#pragma unroll
                for (int jj = 0; jj < 4; ++jj) {
                    const float4 v = *reinterpret_cast<const float4*>(Bs + (b0 + (j + jj) * cstep) * ldb + k);
                    b[0][j + jj] = v.x; b[1][j + jj] = v.y; b[2][j + jj] = v.z; b[3][j + jj] = v.w;
                }
            } else {
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    const float4 v = *reinterpret_cast<const float4*>(Bs + (k + kk) * ldb + b0 + j);
                    b[kk][j] = v.x; b[kk][j + 1] = v.y; b[kk][j + 2] = v.z; b[kk][j + 3] = v.w;
                }
            }
        }
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) part[i][j] = fmaf(a[i][kk], b[kk][j], part[i][j]);
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += part[i][j];
}
#endif

// STORE_VEC 0 (probes only; no shipped spec sets it) keeps store_tiles' 4-byte stores everywhere.
#ifndef STORE_VEC
#define STORE_VEC 1
#endif

#if !F32_DATA
// A 4 x 4 transpose of 32-bit words across the four lanes of a quad (lane & 3 = t): before it
// lane t holds w[j] = the word (t, j); after it, w[i] = the word (i, t). Two butterfly rounds
// (xor 1, xor 2) of two shuffles each: a round with mask m swaps word (t, j) with (t ^ m, j ^ m)
// where bit m of t and j differ.
__device__ __forceinline__ void quad_transpose(unsigned (&w)[4], int lane) {
#pragma unroll
    for (int m = 1; m <= 2; m <<= 1) {
        const bool hi = lane & m;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            if (j & m) continue;                   // the pair (j, j + m)
            const unsigned got = __shfl_xor_sync(0xffffffffu, hi ? w[j] : w[j + m], m);
            if (hi) w[j] = got; else w[j + m] = got;
        }
    }
}
#endif

// L2 cache policy for TMA copies and hinted stores: 0 evict_first, 1 evict_last, 2 evict_normal.
template <int HINT>
__device__ __forceinline__ unsigned long long l2_policy() {
    unsigned long long p;
    if (HINT == 0) asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
    else if (HINT == 1) asm("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(p));
    else asm("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(p));
    return p;
}

// One 16-byte store of y (4 words). Y_HINT (dsd_stream.cu's item-queue sets: 0) gives the
// store l2_policy<Y_HINT>'s L2 eviction policy (docs/perf-notes.md v38: y's stream through L2
// pushed out the inputs' lines at large M). Undefined, a plain store.
__device__ __forceinline__ void st_y16(elem_t* p, const unsigned (&w)[4]) {
#ifdef Y_HINT
    asm volatile("st.global.L2::cache_hint.v4.b32 [%0], {%1, %2, %3, %4}, %5;"
                 :: "l"(p), "r"(w[0]), "r"(w[1]), "r"(w[2]), "r"(w[3]), "l"(l2_policy<Y_HINT>())
                 : "memory");
#else
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
#endif
}

// Store a warp's m16n8 accumulator tiles as out = alpha * acc + beta * out (store_pair). Tile
// (mi, ni) covers rows row0 + mi*16 .. +15 and columns col0 + ni*8 .. +7 of the output at p
// (row stride ld elements); rows at or past valid_rows are skipped.
// 16-bit outputs with NI a multiple of 4, beta == 0 and 16-byte aligned rows at p + col0 take
// 16-byte stores: a quad's words of four n8 tiles are transposed (quad_transpose) so each lane
// holds 8 neighbouring columns of its row, and a warp's store writes 8 rows x 64 bytes, one L2
// request a row, not four of 16 bytes (docs/perf-notes.md v34: the L2's tag lookups are what
// bounds 16-bit bs 32 x @ W at M = 4096, and y's 4-byte stores were 12% of them).
template <int MI, int NI>
__device__ __forceinline__ void store_tiles(elem_t* p, long long ld, const float (&acc)[MI][NI][4], int row0,
                                            int col0, int valid_rows, float alpha, float beta, int lane) {
    const int gr = lane >> 2, tc = (lane & 3) * 2;
#if !F32_DATA && STORE_VEC
    if (NI % 4 == 0 && beta == 0.f &&
        ((reinterpret_cast<unsigned long long>(p + col0) | (unsigned long long)(ld * 2)) & 15) == 0) {
        const int t = lane & 3;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            const int r = row0 + mi * 16 + gr;
#pragma unroll
            for (int h = 0; h < 2; ++h) {          // rows r, r + 8
#pragma unroll
                for (int g = 0; g < NI / 4; ++g) {
                    unsigned w[4];
#pragma unroll
                    for (int j = 0; j < 4; ++j)
                        w[j] = pack2(alpha * acc[mi][4 * g + j][2 * h], alpha * acc[mi][4 * g + j][2 * h + 1]);
                    quad_transpose(w, lane);
                    if (r + 8 * h < valid_rows)
                        st_y16(p + (r + 8 * h) * ld + col0 + 32 * g + 8 * t, w);
                }
            }
        }
        return;
    }
#endif
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
        const int r = row0 + mi * 16 + gr;
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
            const int c = col0 + ni * 8 + tc;
            if (r < valid_rows) store_pair(p + r * ld + c, acc[mi][ni][0], acc[mi][ni][1], alpha, beta);
            if (r + 8 < valid_rows) store_pair(p + (r + 8) * ld + c, acc[mi][ni][2], acc[mi][ni][3], alpha, beta);
        }
    }
}

// Store a grouped kernel's accumulators: acc[q] is this warp's tile of output block-column
// j0 + q (columns at or past ncols are skipped), rows row0 .. of y_rows (row stride ldy).
template <int BS_, int RW, int MI, int NI>
__device__ __forceinline__ void store_group_tiles(elem_t* y_rows, long long ldy,
                                                  const float (&acc)[RW][MI][NI][4], int j0,
                                                  int ncols, int row0, int valid_rows, float alpha,
                                                  float beta, int lane) {
#pragma unroll
    for (int q = 0; q < RW; ++q) {
        const int j = j0 + q;
        if (j >= ncols) continue;
        store_tiles<MI, NI>(y_rows + (long long)j * BS_, ldy, acc[q], row0, 0, valid_rows, alpha,
                            beta, lane);
    }
}

// ---------------------------------------------------------------- grouped steps
// The grouped kernels' step entries meta[1 .. n] (codes (c_local << 16) | column in the group)
// that fall in this warp's RW columns col0 .. col0 + RW - 1: calls f(q, c_local, e) for each,
// q the column's index among the warp's, e the entry's index in the step. Scans 32 codes at a
// time with one ballot per owned column, so a column's blocks come in entry order.
template <int RW, class F>
__device__ __forceinline__ void for_each_owned_entry(const int* meta, int n, int col0, int lane, F&& f) {
    for (int base = 0; base < n; base += 32) {
        const int code = base + lane < n ? meta[1 + base + lane] : -1;
        const int jl = (code & 0xffff) - col0;
        const int myq = code >= 0 && jl >= 0 && jl < RW ? jl : -1;
        if (!__any_sync(0xffffffffu, myq >= 0)) continue;
#pragma unroll
        for (int q = 0; q < RW; ++q) {
            unsigned mine = __ballot_sync(0xffffffffu, myq == q);
            while (mine) {
                const int t = __ffs(mine) - 1;
                mine &= mine - 1;
                f(q, __shfl_sync(0xffffffffu, code, t) >> 16, base + t);
            }
        }
    }
}

// ---------------------------------------------------------------- GPU-scope flags
__device__ __forceinline__ int ld_acquire_gpu(const int* p) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void st_release_gpu(int* p, int v) {
    asm volatile("st.release.gpu.global.b32 [%0], %1;" :: "l"(p), "r"(v) : "memory");
}

// ---------------------------------------------------------------- split-K combine
__device__ __forceinline__ void st_cg(float* p, float v) {
    asm volatile("st.global.cg.f32 [%0], %1;" :: "l"(p), "f"(v) : "memory");
}
__device__ __forceinline__ float ld_cg(const float* p) {
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
    return v;
}

// Deterministic split-K: this CTA's partial tile (ACC_N floats per thread, NT threads) goes to
// ws[(slot, blockIdx.y)], laid out [q][thread] so the accesses coalesce. The CTA that finishes
// last among the info.y chunks of its tile (integer counter, reset to 0 by that CTA) reloads
// every partial in slot order info.x, info.x + 1, ... into acc and returns true; the others
// return false. Called by all threads of the CTA after their last shared-memory read;
// `is_last` is one int of shared memory, which this reuses (no static shared memory, so the
// kernels' dynamic shared memory keeps the whole 48 KB default). BAR = 0 syncs the whole CTA;
// another value syncs threads 0 .. NT_-1 on that named barrier (a warp-specialised kernel whose
// producer warp has left).
template <int BAR>
__device__ __forceinline__ void sync_threads_of(int nt) {
    if (BAR == 0) __syncthreads();
    else asm volatile("bar.sync %0, %1;" :: "n"(BAR), "r"(nt) : "memory");
}

// Whether any of the nt threads (whole warps) that reach named barrier BAR passes v true;
// every one of them gets the answer. barrier.red without .aligned: the lanes of a warp may
// reach it from different branches (a producer warp's lane 0 and the others).
template <int BAR>
__device__ __forceinline__ bool any_of_threads(bool v, int nt) {
    int r;
    asm volatile("{\n\t.reg .pred p, q;\n\tsetp.ne.s32 p, %1, 0;\n\t"
                 "barrier.red.or.pred q, %2, %3, p;\n\tselp.s32 %0, 1, 0, q;\n\t}"
                 : "=r"(r) : "r"((int)v), "n"(BAR), "r"(nt) : "memory");
    return r != 0;
}

template <int ACC_N, int NT_, int BAR = 0>
__device__ __forceinline__ bool split_combine(float* acc, float* ws, int slot, int2 info,
                                              int* counter, volatile int& is_last) {
    const long long tile = (long long)ACC_N * NT_;
    float* mine = ws + ((long long)slot * gridDim.y + blockIdx.y) * tile + threadIdx.x;
#pragma unroll
    for (int q = 0; q < ACC_N; ++q) st_cg(mine + q * NT_, acc[q]);
    __threadfence();
    sync_threads_of<BAR>(NT_);
    if (threadIdx.x == 0) {
        const int done = atomicAdd(counter, 1);
        is_last = done == info.y - 1;
        if (is_last) *counter = 0;
    }
    sync_threads_of<BAR>(NT_);
    if (!is_last) return false;
    __threadfence();
#pragma unroll
    for (int q = 0; q < ACC_N; ++q) acc[q] = 0.f;
    for (int s = 0; s < info.y; ++s) {
        const float* part = ws + ((long long)(info.x + s) * gridDim.y + blockIdx.y) * tile + threadIdx.x;
#pragma unroll
        for (int q = 0; q < ACC_N; ++q) acc[q] += ld_cg(part + q * NT_);
    }
    return true;
}
