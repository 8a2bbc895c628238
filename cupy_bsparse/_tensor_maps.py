"""CUDA tensor maps (TMA descriptors) for kernels that copy tiles with the TMA unit.

A map describes a 2-D row-major array in GPU memory and the box (tile) one copy moves; the
kernel takes it by value (``const __grid_constant__``). Maps are encoded on the host by the
driver's ``cuTensorMapEncodeTiled`` (through ctypes: CuPy does not wrap it) and cached by
address and shape, so a repeated call with the same buffers encodes nothing.
"""
import ctypes

import numpy as np

# CU_TENSOR_MAP_SWIZZLE_NONE / 32B / 64B / 128B by box row bytes
_SWIZZLE = {16: 0, 32: 1, 64: 2, 128: 3}
_DATA_TYPE = {2: 1, 4: 2}              # CU_TENSOR_MAP_DATA_TYPE_UINT16 / UINT32 by item size
_L2_PROMOTION_128B = 2
_MAP_BYTES = 128
_encode = None
_cache = {}
_CACHE_SIZE = 256


def _encoder():
    global _encode
    if _encode is None:
        fn = ctypes.CDLL("libcuda.so.1").cuTensorMapEncodeTiled
        u32p, u64p = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p, u64p, u64p,
                       u32p, u32p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
        _encode = fn
    return _encode


def _box_ok(itemsize, box_rows, box_cols):
    return box_cols * itemsize in _SWIZZLE and itemsize in _DATA_TYPE and 0 < box_rows <= 256


def check_box(itemsize, box_rows, box_cols):
    """ValueError unless the TMA can copy (box_rows, box_cols) boxes of ``itemsize``-byte
    elements with the swizzle of their row (``tile_map``'s box rules; no GPU needed)."""
    if not _box_ok(itemsize, box_rows, box_cols):
        raise ValueError(f"no tensor map box of ({box_rows}, {box_cols}) {itemsize}-byte elements")


def tile_map(ptr, rows, cols, row_bytes, itemsize, box_rows, box_cols):
    """Tensor map of a (rows, cols) array at device address ``ptr`` with a row stride of
    ``row_bytes``, copied in (box_rows, box_cols) boxes with the swizzle that matches the box
    row (32, 64 or 128 bytes; 16-byte rows unswizzled). Elements outside the array read as zero.

    Returns the map as a kernel argument passed by value (CuPy's ``CNumpyArray`` over a numpy
    array of one 128-byte item), built once per key so a launch converts nothing.
    Raises ValueError for shapes the TMA cannot describe and RuntimeError if the driver
    refuses the map.
    """
    key = (ptr, rows, cols, row_bytes, itemsize, box_rows, box_cols)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    if (not _box_ok(itemsize, box_rows, box_cols) or ptr % 16 or row_bytes % 16 or rows < 1
            or cols < 1):
        raise ValueError(f"no tensor map for rows={rows} cols={cols} row_bytes={row_bytes} "
                         f"itemsize={itemsize} box=({box_rows}, {box_cols}) at {ptr:#x}")
    buf = np.zeros(_MAP_BYTES + 64, np.uint8)
    off = -buf.ctypes.data % 64                   # CUtensorMap is 64-byte aligned
    tmap = buf[off:off + _MAP_BYTES].view(np.dtype((np.void, _MAP_BYTES)))
    dims = (ctypes.c_uint64 * 2)(cols, rows)
    strides = (ctypes.c_uint64 * 1)(row_bytes)
    box = (ctypes.c_uint32 * 2)(box_cols, box_rows)
    unit = (ctypes.c_uint32 * 2)(1, 1)
    rc = _encoder()(tmap.ctypes.data, _DATA_TYPE[itemsize], 2, ctypes.c_void_p(ptr), dims, strides,
                    box, unit, 0, _SWIZZLE[box_cols * itemsize], _L2_PROMOTION_128B, 0)
    if rc != 0:
        raise RuntimeError(f"cuTensorMapEncodeTiled failed with CUresult {rc} for {key}")
    from cupy.cuda.function import CNumpyArray

    arg = CNumpyArray(tmap)
    if len(_cache) >= _CACHE_SIZE:
        del _cache[next(iter(_cache))]
    _cache[key] = arg
    return arg
