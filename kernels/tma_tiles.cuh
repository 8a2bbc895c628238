// tma_tiles.cuh: tile geometry of the TMA stream kernels (dsd_stream.cu, sddmm_stream.cu,
// sddmm_tall.cu), whose tiles are BS columns wide; includes common.cuh, tma.cuh and, for
// float32, tf32x3_tiles.cuh.
//
// A tile row lands as box rows of RB bytes: the whole row for the 16-bit types (BS * 2 bytes),
// and min(4 * BS, 128) bytes for float32 (DTYPE_ID 4, 3xTF32), so a float32 bs 64 tile is two
// sub-tiles of 32 columns, one TMA copy each, one after the other (_gpu_ops._tile_cols is the
// host's twin: the tensor maps' box width). NH: sub-tiles per tile; HC: columns per sub-tile;
// ATOM: the swizzle pattern's period, 8 rows, on which every tile must start.
#pragma once

#if DTYPE_ID == 4
#define RB (BS >= 32 ? 128 : BS * 4)   // bytes of one sub-tile row (16 or 32 float32)
#else
#define RB (BS * 2)                    // bytes of one tile row
#endif
#include "common.cuh"
#include "tma.cuh"

#if DTYPE_ID != 1 && DTYPE_ID != 2 && DTYPE_ID != 4
#error "the TMA stream kernels run tensor-core types with TMA tiles only (DTYPE_ID 1, 2, 4)"
#endif
#if DTYPE_ID == 4
#include "tf32x3_tiles.cuh"
#endif

#define ATOM (8 * RB)
#define NH (BS * (int)sizeof(elem_t) / RB)     // sub-tiles (TMA copies) per tile
#define HC (RB / (int)sizeof(elem_t))          // columns per sub-tile
