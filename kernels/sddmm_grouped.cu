// sddmm_grouped.cu: sampled dense-dense product on groups of block-columns.
//
//     out[b] = alpha * x[:, c*BS:(c+1)*BS]^T @ dy[:, k*BS:(k+1)*BS] + beta * out[b]
//
// Same operands and contract as sddmm.cu. sddmm.cu gives a CTA blocks of one block-row, so each
// block re-reads its own (M x BS) column block of dy: for bs 8 that is 16-byte row pieces (half
// a 32-byte sector) per block. Here a CTA (an item) owns up to NBLK stored blocks that lie in R
// neighbouring block-columns (a group) and in at most NCX block-rows. Each pipeline step loads
// MK rows of the dense dy slab of the group (R * BS columns) and of the item's NCX x column
// blocks once, and every block of the item reduces over them.
//
// Tables (built by cupy_bsparse/_gpu_ops.py, sddmm_group_table):
//   item[i] = (group, e0, e1, ncx): the item's blocks are entries e0 .. e1-1 (at most NBLK);
//             its x column blocks are crow[i * NCX + 0 .. ncx-1].
//   gent[e] = (stored block b, (slot << 16) | jl): block b multiplies x column block
//             crow[i * NCX + slot] with dy column block group * R + jl.
// Block q of an item belongs to warp q % NW (accumulator q / NW): the split is even by
// construction. Every stored block is written exactly once.
//
// PAIRS (BS 8; 16-bit, or float32 as 3xTF32): gent holds units (block, code, partner block or
// -1, partner code) of two blocks in one column of the group (cupy_bsparse/_gpu_ops.py,
// pair_units), and item entries count units. The unit's two x column blocks fill rows 0-7 and
// 8-15 of one m16 tile, so no half of a tensor-core product is discarded.
// SOFF (float32 PAIRS; the specs' choice since v53, _specs.sddmm_grouped_spec; SOFF 0 is
// SDDMM_GROUPED_F32_VARIANTS' variant, the code before it): the units' codes replaced by byte
// offsets into a stage (_work_lists.unit_offsets): (block, first x slot's | the second's << 16,
// partner block or -1, dy column's), so a step adds them to two per-step bases instead of
// decoding codes, each fragment load one base register and a constant offset.
// TPAIRS (with SOFF; v53, the default since v54, _specs.TWO_WAY_PAIRS): units pair two blocks that share a column (as above) or two that
// share an x column block ("transposed": rows 0-7 of the tile from the first block's dy
// column, rows 8-15 from the second's, the columns from the shared x column block; the tile is
// the two blocks transposed). Both tiles of a stage then live in one set of rows (x's column
// blocks, then dy's), so a unit's three offsets are from one lane base whatever its kind; the
// dy column's offset holds the transposed flag << 16 (_work_lists.two_way_units).
//
// TF32_REDO (float32 PAIRS; the default since v52): the item's sums first with
// split_tf32's clamp left out (5 -> 3 instructions a fragment register, tf32x3.cuh TF32_CLAMP);
// a sum that no infinite, NaN or near-FLT_MAX (|v| >= 0x7f7ff000) input enters is the clamped
// split's, bit for bit, and one that any enters is NaN. So when no sum of the CTA is NaN its
// blocks are stored; else the CTA computes the item again with the clamp (__syncthreads_or):
// results identical to the clamped kernel's for every input, the second pass only for items
// with such inputs.
//
// Parameters (#defines): DTYPE_ID (1, 2, 3 or 4: tensor cores), BS (8 or 16: one m16 tile of
// output rows, rows BS..15 discarded for bs 8), R, NCX, NBLK, MK (rows of M per step),
// STAGES, NW (warps), MIN_CTAS (resident CTAs per SM the register budget is cut for), PAIRS,
// TF32_REDO, SOFF, TPAIRS.
#include "common.cuh"

#if !USE_MMA
#error "sddmm_grouped.cu runs on tensor cores only (DTYPE_ID 1, 2, 3, 4)"
#endif

#define VEC (16 / (int)sizeof(elem_t))
// An 8-element pad: staggers rows for the fragment reads, and holds the m16 over-read of the
// last x column block when BS is 8 (the paths that read whole m16 tiles; with TPAIRS the pad
// follows dy's tile, and SOFF's loads never pass a block).
#ifndef TPAIRS
#define TPAIRS 0
#endif
#if TPAIRS
// one row of a stage holds x's NCX column blocks, then the group's R dy column blocks, then the
// pad (NCX * BS + R * BS = 0 mod 32 words: rows still 8 (mod 32) words apart)
#define X_LD (NCX * BS + R * BS + 8)
#define D_LD X_LD
#define X_STAGE (MK * X_LD)
#define D_STAGE X_STAGE
#else
#define X_LD (NCX * BS + 8)
#define D_LD (R * BS + 8)
#define X_STAGE (MK * X_LD)
#define D_STAGE (MK * D_LD)
#endif
#define NT (NW * 32)
#define SLOTS (NBLK / NW)
#if PAIRS
#if BS != 8 || DTYPE_ID == 0 || DTYPE_ID == 3
#error "PAIRS: BS 8, 16-bit types or float32 as 3xTF32"
#endif
typedef int4 code_t;
#else
typedef int2 code_t;
#endif
#ifndef TF32_REDO
#define TF32_REDO 0
#endif
#ifndef SOFF
#define SOFF 0                             // float32 pairs: the units' shared-memory byte offsets
#endif                                     // from the table (below)
#if SOFF && !(PAIRS && DTYPE_ID == 4)
#error "SOFF: float32 PAIRS"
#endif
#if TPAIRS && !SOFF
#error "TPAIRS: SOFF's units"
#endif
#if TF32_REDO && !(PAIRS && DTYPE_ID == 4)
#error "TF32_REDO: float32 PAIRS"
#endif

extern "C" __global__ void __launch_bounds__(NT, MIN_CTAS)
bsmm_sddmm_grouped(const elem_t* __restrict__ x, long long ldx, const elem_t* __restrict__ dy,
                   long long ldd, const int4* __restrict__ item, const code_t* __restrict__ gent,
                   const int* __restrict__ crow,
                   elem_t* __restrict__ out, int M, int K,
                   float alpha, float beta)
{
    static_assert(BS == 8 || BS == 16, "one m16 tile of output rows");
    static_assert(NBLK % NW == 0 && MK % 16 == 0, "tile shape");
#if TPAIRS
    static_assert((NCX + R) * BS % 32 == 0, "TPAIRS: stage rows 8 (mod 32) words apart");
    static_assert((NCX + R) * BS * 4 < 65536, "TPAIRS: the units' 16-bit stage-row offsets");
#endif
    extern __shared__ __align__(16) unsigned char smem_raw[];
    code_t* codes = reinterpret_cast<code_t*>(smem_raw);           // NBLK entries
    elem_t* Xs = reinterpret_cast<elem_t*>(smem_raw + NBLK * sizeof(code_t));
#if TPAIRS
    elem_t* Ds = Xs + NCX * BS;                                    // the same rows, after x's
#else
    elem_t* Ds = Xs + STAGES * X_STAGE;
#endif
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int4 it = __ldg(item + blockIdx.x);
    const int grp = it.x, e0 = it.y, nblk = it.z - it.y, ncx = it.w;
    for (int q = tid; q < nblk; q += NT) codes[q] = __ldg(gent + e0 + q);

    // Copy assignments, fixed per thread: x chunk column (slot xs, piece xv) of rows xr, xr +
    // XROWS, ...; dy chunk column dc of rows dr, dr + DROWS, ...
    constexpr int XCH = NCX * (BS / VEC), DCH = R * (BS / VEC);
    static_assert(NT % XCH == 0 && NT % DCH == 0, "copy assignment");
    constexpr int XROWS = NT / XCH, DROWS = NT / DCH;
    constexpr int XPASS = (MK + XROWS - 1) / XROWS, DPASS = (MK + DROWS - 1) / DROWS;
    constexpr unsigned ESZ = sizeof(elem_t);
    const int xs = (tid % XCH) / (BS / VEC), xv = tid % (BS / VEC), xr = tid / XCH;
    const int dc = tid % DCH, dr = tid / DCH;
    const bool x_ok = xs < ncx;
    const long long xoff = (x_ok ? (long long)__ldg(crow + (long long)blockIdx.x * NCX + xs) * BS : 0)
                           + xv * VEC + (long long)xr * ldx;
    const elem_t* xsrc = x + xoff;
    const int dcol = grp * R * BS + dc * VEC;
    const bool d_ok = dcol < K;
    const long long doff = (d_ok ? dcol : 0) + (long long)dr * ldd;
    const elem_t* dsrc = dy + doff;
    const unsigned sX = smem_u32(Xs), sD = smem_u32(Ds);
    const unsigned xdst = sX + (xr * X_LD + xs * BS + xv * VEC) * ESZ;
    const unsigned ddst = sD + (dr * D_LD + dc * VEC) * ESZ;

    // Rows past M are zero-filled: they are summed over.
    auto load_stage = [&](int buf, int step) {
        const int m0 = step * MK;
        if (x_ok) {
#pragma unroll
            for (int p = 0; p < XPASS; ++p) {
                const int r = xr + p * XROWS;
                if (MK % XROWS == 0 || r < MK) {
                    const bool ok = m0 + r < M;
                    cp_async16_s(xdst + (buf * X_STAGE + p * XROWS * X_LD) * ESZ,
                                 ok ? xsrc + (long long)(m0 + p * XROWS) * ldx : x, ok ? 16 : 0);
                }
            }
        }
        if (d_ok) {
#pragma unroll
            for (int p = 0; p < DPASS; ++p) {
                const int r = dr + p * DROWS;
                if (MK % DROWS == 0 || r < MK) {
                    const bool ok = m0 + r < M;
                    cp_async16_s(ddst + (buf * D_STAGE + p * DROWS * D_LD) * ESZ,
                                 ok ? dsrc + (long long)(m0 + p * DROWS) * ldd : dy, ok ? 16 : 0);
                }
            }
        }
    };

    constexpr int NI = BS / 8;
    float acc[SLOTS][1][NI][4];
    __syncthreads();   // codes

    // the item's sums over all of M, into acc (clamp, a constant at each call: split_tf32's
    // clamp for the float32 pairs' fragments; the other paths take the default)
    auto item_sums = [&](const bool clamp) {
        zero_fill<SLOTS * NI * 4>(&acc[0][0][0][0]);
        cp_async_ring<STAGES>((M + MK - 1) / MK, load_stage, [&](int buf) {
            const elem_t* xs_ = Xs + buf * X_STAGE;
            const elem_t* ds_ = Ds + buf * D_STAGE;
#if SOFF
            // the lane's rows (k = t) of the stage's x and dy tiles, as shared-window addresses
            // (TPAIRS: of the stage's rows, which hold both; the table's offsets say where)
            const unsigned xlane = smem_u32(xs_) + ((lane >> 2) + (lane & 3) * X_LD) * 4,
                           dlane = TPAIRS ? xlane : smem_u32(ds_) + ((lane >> 2) + (lane & 3) * D_LD) * 4;
#endif
#pragma unroll
            for (int s = 0; s < SLOTS; ++s) {
                const int q = s * NW + warp;
                if (q < nblk) {
                    const int code = codes[q].y;
#if PAIRS && DTYPE_ID == 4
                    // rows 0-7 of A from the first block's x slot, rows 8-15 from the partner's
                    // (the first's again when it has none: computed, not stored). 32-bit loads of
                    // A(row, k) = x[k, slot*BS + row]: rows k + t are X_LD = 8 (mod 32) words apart,
                    // so lane (g, t) reads bank 8t + g (+ a constant): no conflicts
#if SOFF
                    // (the table's offsets: no code to decode)
                    const int4 cq = codes[q];
                    const unsigned ua1 = xlane + (cq.y & 0xffff), ua2 = xlane + ((unsigned)cq.y >> 16),
                                   ub = dlane + (TPAIRS ? cq.w & 0xffff : cq.w);
                    // the fragments of the 8-deep step at row k (A: the two slots' rows 0-7 and
                    // 8-15; B: the column), from the lane's addresses
                    auto step_frags = [&](int k, unsigned (&a)[4], unsigned (&bb)[2]) {
                        a[0] = lds32(ua1 + k * X_LD * 4);
                        a[1] = lds32(ua2 + k * X_LD * 4);
                        a[2] = lds32(ua1 + (k + 4) * X_LD * 4);
                        a[3] = lds32(ua2 + (k + 4) * X_LD * 4);
                        bb[0] = lds32(ub + k * D_LD * 4);
                        bb[1] = lds32(ub + (k + 4) * D_LD * 4);
                    };
#else
                    const int s2 = codes[q].z >= 0 ? (codes[q].w >> 16) : (code >> 16);
                    const int g = lane >> 2, t = lane & 3;
                    const elem_t* a1 = xs_ + (code >> 16) * BS + g;
                    const elem_t* a2 = xs_ + s2 * BS + g;
                    const elem_t* b = ds_ + (code & 0xffff) * BS + g;
#endif
#pragma unroll
                    for (int k = 0; k < MK; k += 8) {
#if SOFF
                        unsigned af[1][4], bf[1][2];
                        step_frags(k, af[0], bf[0]);
#else
                        const unsigned af[1][4] = {{__float_as_uint(a1[(k + t) * X_LD]),
                                                    __float_as_uint(a2[(k + t) * X_LD]),
                                                    __float_as_uint(a1[(k + t + 4) * X_LD]),
                                                    __float_as_uint(a2[(k + t + 4) * X_LD])}};
                        const unsigned bf[1][2] = {{__float_as_uint(b[(k + t) * D_LD]),
                                                    __float_as_uint(b[(k + t + 4) * D_LD])}};
#endif
                        if (clamp) mma_3xtf32<1, 1, true>(acc[s], af, bf);
                        else mma_3xtf32<1, 1, false>(acc[s], af, bf);
                    }
#elif PAIRS
                    // rows 0-7 of A from the first block's x slot, rows 8-15 from the partner's
                    // (the first's again when it has none: computed, not stored)
                    const int s2 = codes[q].z >= 0 ? (codes[q].w >> 16) : (code >> 16);
                    const elem_t* a = xs_ + (((lane >> 3) & 1) ? s2 : (code >> 16)) * BS
                                      + ((lane & 7) + (lane >> 4) * 8) * X_LD;
                    const elem_t* b = ds_ + (code & 0xffff) * BS + ((lane & 7) + ((lane >> 3) & 1) * 8) * D_LD;
#pragma unroll
                    for (int k = 0; k < MK; k += 16) {
                        unsigned af[4], bf[2];
                        ldsm_x4_t(af, a + k * X_LD);
                        ldsm_x2_t(bf, b + k * D_LD);
                        mma(acc[s][0][0], af, bf);
                    }
#else
                    // A(row, k) = x[k, c*BS + row] (m-contiguous), B(k, n) = dy[k, j*BS + n]
                    warp_mma<1, NI, MK, false, false>(acc[s], xs_ + (code >> 16) * BS, X_LD,
                                                      ds_ + (code & 0xffff) * BS, D_LD, lane);
#endif
                }
            }
        });
    };
#if TF32_REDO
    item_sums(false);
    // a NaN sum anywhere in the CTA: the item again with the clamp (the barrier also frees the
    // ring's buffers for the second pass)
    if (__syncthreads_or(any_nan<SLOTS * NI * 4>(&acc[0][0][0][0]))) item_sums(true);
#else
    item_sums(TF32_CLAMP != 0);
#endif

#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
        const int q = s * NW + warp;
#if TPAIRS
        if (q < nblk && (codes[q].w >> 16)) {
            // a transposed unit: the tile's rows are the two blocks' dy columns, its columns
            // their shared x column block's, so element (row g, column c) is out[c][g]
            const int g = lane >> 2, c = (lane & 3) * 2;
            elem_t* o1 = out + (long long)codes[q].x * (BS * BS) + c * BS + g;
            elem_t* o2 = out + (long long)codes[q].z * (BS * BS) + c * BS + g;
            store_one(o1, acc[s][0][0][0], alpha, beta);
            store_one(o1 + BS, acc[s][0][0][1], alpha, beta);
            store_one(o2, acc[s][0][0][2], alpha, beta);
            store_one(o2 + BS, acc[s][0][0][3], alpha, beta);
            continue;
        }
#endif
        if (q < nblk) {
            // one block (BS 8: the tile's rows 0-7), row-major BS x BS
            store_tiles<1, NI>(out + (long long)codes[q].x * (BS * BS), BS, acc[s], 0, 0, BS,
                               alpha, beta, lane);
#if PAIRS
            if (codes[q].z >= 0)
                store_pair(out + (long long)codes[q].z * (BS * BS) + (lane >> 2) * BS + (lane & 3) * 2,
                           acc[s][0][0][2], acc[s][0][0][3], alpha, beta);
#endif
        }
    }
}
