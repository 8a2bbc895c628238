"""Public block-sparse products: argument checks, batching, dispatch to the kernel contract.

Both products reduce to the two contracts of docs/design.md: ``dsd`` (dense x sparse) and
``sddmm`` (dense x dense sampled on a layout). numpy operands run ``reference`` on the CPU, cupy
operands run ``_gpu_ops`` (imported on first use, so nothing here touches CuPy at import time).
"""

import math
import numbers

import numpy as np

from . import reference
from ._arrays import (SUPPORTED_BLOCKSIZES, all_cupy, astype, bits, check_dtype, from_bits,
                      get_array_module, is_cupy)
from .block_layout import BlockLayout
from .matrix import BlockSparseMatrix

__all__ = ["matmul", "sddmm"]


_gpu_ops = None


def _backend(xp):
    """reference (numpy) or _gpu_ops (cupy), the latter imported on first use."""
    global _gpu_ops
    if xp is np:
        return reference
    if _gpu_ops is None:
        from . import _gpu_ops as mod

        _gpu_ops = mod
    return _gpu_ops


def _real(value, name, fn):
    if type(value) is float:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


def _check_flag(value, name, fn):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {type(value).__name__}")


def _check_dense(a, name, fn):
    if not isinstance(a, np.ndarray) and not is_cupy(a):
        raise TypeError(f"{fn}: {name} must be a numpy or cupy array, got {type(a).__name__}")


def _check_gpu_support(xp, dtype, blocksize, blocksize_name, fn):
    """dtype (shared by a and b) and the block size of ``blocksize_name`` on the GPU."""
    if xp is np:
        return
    if dtype == np.float64:
        raise TypeError(
            f"{fn}: a and b have dtype float64; the GPU kernels support float16, bfloat16 and "
            "float32, not float64: use float32 or run on the CPU (numpy)"
        )
    if blocksize not in SUPPORTED_BLOCKSIZES:
        raise ValueError(
            f"{fn}: {blocksize_name} has blocksize {blocksize}; the GPU kernels support block "
            f"sizes {SUPPORTED_BLOCKSIZES}"
        )


def _reshape(a, shape):
    """``a.reshape(shape)``, a copy only where a view is impossible (bfloat16-safe on cupy)."""
    if a.shape == shape:
        return a
    return from_bits(bits(a).reshape(shape), a.dtype)


def _row_major(a, xp):
    """2-D ``a`` as the kernels take it: itself if its rows are unit-stride and don't overlap,
    else a C-contiguous copy. The CPU reference takes any strides: ``a`` itself for numpy."""
    if xp is np:
        return a
    it = a.itemsize
    if a.strides[1] == it and a.strides[0] >= a.shape[1] * it:
        return a
    return astype(a, a.dtype)


def _check_out(out, shape, dtype, fn):
    if not isinstance(out, np.ndarray) and not is_cupy(out):
        raise TypeError(f"{fn}: out must be a numpy or cupy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, the result has dtype {dtype}")
    if out.shape != shape:
        raise ValueError(f"{fn}: out has shape {out.shape}, the result has shape {shape}")
    _check_writable(out, "out", fn)


def _check_writable(a, name, fn):
    """ValueError naming ``name`` for a read-only numpy array (cupy arrays are always writable)."""
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        raise ValueError(f"{fn}: {name} is read-only")


def _extent(a):
    """[first, last] byte addresses a cupy array can touch."""
    lo = hi = a.data.ptr
    if a._c_contiguous:
        return (lo, lo + a.nbytes - 1) if a.size else (0, -1)
    for n, st in zip(a.shape, a.strides):
        if n == 0:
            return (0, -1)
        if st > 0:
            hi += (n - 1) * st
        else:
            lo += (n - 1) * st
    return lo, hi + a.itemsize - 1


def _check_no_overlap(xp, out, fn, **inputs):
    # The kernels read their inputs while writing out, so an aliased out would corrupt them.
    # On the GPU a bounds test (cupy.may_share_memory's default) costs microseconds per call.
    if xp is not np:
        lo, hi = _extent(out)
    for name, a in inputs.items():
        if xp is np:
            shared = np.may_share_memory(out, a)
        else:
            alo, ahi = _extent(a)
            shared = lo <= ahi and alo <= hi
        if shared:
            raise ValueError(f"{fn}: out shares memory with {name}")


def matmul(a, b, *, out=None, alpha=1.0, beta=0.0, allow_tf32=False):
    """``alpha * (a @ b) + beta * out`` where exactly one of ``a``, ``b`` is a BlockSparseMatrix.

    Forms (W: BlockSparseMatrix of shape (K, N), possibly a transposed view ``V.T``; x: dense
    numpy or cupy array of W's dtype and device):

    - ``matmul(x, W)``: x (..., K) -> (..., N); leading axes are batch axes, a 1-D x (K,) gives
      (N,).
    - ``matmul(W, x)``: x (N, P) or (..., N, P) -> (K, P) or (..., K, P); a 1-D x (N,) gives
      (K,). Computed as ``(x^T @ W^T)^T``; the result is C-contiguous.

    dtypes: float16, bfloat16, float32, float64 (numpy only). The GPU kernels accumulate in
    float32 (TF32 tensor cores for float32 when ``allow_tf32``); the CPU accumulates in float32
    (float64 for float64). The result is rounded to the dtype once.

    out: optional array of the exact result shape and dtype on the same device, not overlapping
    the inputs; for ``x @ W`` it must be C-contiguous. The result is written into it and it is
    returned. ``beta != 0`` needs ``out``; with ``beta == 0``, out is never read.
    alpha, beta: real scalars. Inputs are never modified.

    Raises: TypeError for operand kinds (none or both sparse, non-arrays), dtype mismatch,
    numpy/cupy mixing, float64 on the GPU, non-real alpha/beta; ValueError for shape mismatch,
    a bad (or read-only) out, ``beta != 0`` without out, or a block size the GPU kernels lack
    (8/16/32/64).
    """
    fn = "matmul"
    a_sparse, b_sparse = isinstance(a, BlockSparseMatrix), isinstance(b, BlockSparseMatrix)
    if a_sparse == b_sparse:
        raise TypeError(
            f"{fn}: exactly one of a, b must be a BlockSparseMatrix, got "
            f"{type(a).__name__} and {type(b).__name__}"
        )
    alpha, beta = _real(alpha, "alpha", fn), _real(beta, "beta", fn)
    _check_flag(allow_tf32, "allow_tf32", fn)
    (w, w_name, x, x_name) = (b, "b", a, "a") if b_sparse else (a, "a", b, "b")
    _check_dense(x, x_name, fn)
    xp = all_cupy(x, w._data, out) or get_array_module(**{x_name: x, w_name: w._data, "out": out})
    if x.dtype != w.dtype:
        raise TypeError(
            f"{fn}: {x_name} has dtype {x.dtype} but {w_name} has dtype {w.dtype}; "
            "cast one of them first"
        )
    _check_gpu_support(xp, w.dtype, w._base_layout.blocksize, w_name, fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: {x_name} must have at least one dimension, got a 0-d array")
    if beta != 0 and out is None:
        raise ValueError(f"{fn}: beta = {beta} needs out= (the array to accumulate into)")
    if b_sparse:
        return _x_times_w(x, w, out, alpha, beta, allow_tf32, xp)
    return _w_times_x(w, x, out, alpha, beta, allow_tf32, xp)


def _x_times_w(x, w, out, alpha, beta, allow_tf32, xp):
    fn = "matmul"
    k, n = w.shape
    if x.shape[-1] != k:
        raise ValueError(
            f"{fn}: a has shape {x.shape}; its last axis must match b.shape[0] = {k} "
            f"(b has shape {w.shape})"
        )
    lead = x.shape[:-1]
    m = math.prod(lead)
    shape = lead + (n,)
    if out is None:
        out = xp.empty(shape, dtype=w.dtype)
    else:
        _check_out(out, shape, w.dtype, fn)
        if not (out._c_contiguous if xp is not np else out.flags.c_contiguous):
            raise ValueError(f"{fn}: out must be C-contiguous for a @ b with a sparse b")
        _check_no_overlap(xp, out, fn, a=x, b=w._data)
    if out.size == 0:
        return out
    x2 = _row_major(_reshape(x, (m, k)), xp)
    _backend(xp).dsd(
        x2, w._data, w._base_layout, w._transposed, _reshape(out, (m, n)), alpha, beta, allow_tf32
    )
    return out


def _w_times_x(w, x, out, alpha, beta, allow_tf32, xp):
    fn = "matmul"
    r, c = w.shape
    axis = 0 if x.ndim == 1 else x.ndim - 2
    if x.shape[axis] != c:
        raise ValueError(
            f"{fn}: b has shape {x.shape}; its axis {axis} must match a.shape[1] = {c} "
            f"(a has shape {w.shape})"
        )
    if x.ndim == 1:
        shape, rows = (r,), 1
        xt = _reshape(x, (1, c))
    else:
        shape = x.shape[:-2] + (r, x.shape[-1])
        rows = math.prod(x.shape[:-2]) * x.shape[-1]
        xt = _reshape(x.swapaxes(-1, -2), (rows, c))
    if out is None:
        out = xp.empty(shape, dtype=w.dtype)
    else:
        _check_out(out, shape, w.dtype, fn)
        _check_no_overlap(xp, out, fn, a=w._data, b=x)
    if out.size == 0:
        return out
    # The contract computes y^T = x^T @ W^T row-major; write it straight into out when out's
    # last two axes swapped are C-contiguous (on the CPU, which takes any strides, when they
    # form one 2-D view), else through a temporary: numpy's transposed copies are slow.
    target = out if out.ndim == 1 else out.swapaxes(-1, -2)
    direct = target.flags.c_contiguous or (xp is np and target.ndim == 2)
    if direct:
        y = _reshape(target, (rows, r))
    elif beta != 0:
        y = _reshape(astype(target, out.dtype), (rows, r))
    else:
        y = xp.empty((rows, r), dtype=out.dtype)
    _backend(xp).dsd(
        _row_major(xt, xp), w._data, w._base_layout, not w._transposed, y, alpha, beta, allow_tf32
    )
    if not direct:
        bits(target)[...] = bits(y).reshape(target.shape)
    return out


def sddmm(a, b, layout, *, out=None, alpha=1.0, beta=0.0, allow_tf32=False):
    """Sampled dense-dense product: ``alpha * (a @ b)`` on ``layout``'s blocks, ``+ beta * out``.

    a: (R, M) dense, typically ``x.T`` of an (M, R) activation (passed without a copy);
    b: (M, C) dense, same dtype and device. layout: a BlockLayout of shape (R, C), or a
    BlockSparseMatrix whose pattern is used (a transposed view ``W.T`` gives ``W.T``'s pattern
    and a result that is a transposed view too, so it adds to ``W.T`` without reordering).

    Returns a BlockSparseMatrix of that pattern: ``dW = sddmm(x.T, dy, W)`` is the weight gradient
    of ``y = x @ W``. out: optional BlockSparseMatrix of the same pattern, dtype and device whose
    blocks are updated in place (``beta=1.0`` accumulates) and which is returned; its storage
    orientation decides the kernel's (``out`` may be a view). ``beta != 0`` needs ``out``;
    with ``beta == 0``, out is never read. Inputs are never modified.

    dtypes: float16, bfloat16, float32, float64 (numpy only); accumulation as in :func:`matmul`,
    including the opt-in TF32 tensor-core path for float32 (``allow_tf32``, GPU only). On the
    GPU, a layout dense in 2 x 2 groups of blocks (small world) may run coarsened (16-bit bs 32,
    float32 bs 8 and 16: docs/design.md); with ``beta != 0`` its 16-bit sums are then rounded twice
    (``alpha * a @ b``, then the sum), once otherwise.

    Raises: TypeError for non-array a/b, a non-bool allow_tf32, a bad layout or out type, an
    unsupported dtype or a dtype mismatch, numpy/cupy mixing, float64 on the GPU; ValueError for
    shape or pattern mismatch, ``beta != 0`` without out, out read-only or overlapping a or b, or
    a block size the GPU kernels lack (8/16/32/64).
    """
    fn = "sddmm"
    _check_dense(a, "a", fn)
    _check_dense(b, "b", fn)
    alpha, beta = _real(alpha, "alpha", fn), _real(beta, "beta", fn)
    _check_flag(allow_tf32, "allow_tf32", fn)
    if isinstance(layout, BlockSparseMatrix):
        pattern, base, transposed = layout.layout, layout._base_layout, layout._transposed
    elif isinstance(layout, BlockLayout):
        pattern, base, transposed = layout, layout, False
    else:
        raise TypeError(
            f"{fn}: layout must be a BlockLayout or a BlockSparseMatrix, got "
            f"{type(layout).__name__}"
        )
    if out is not None and not isinstance(out, BlockSparseMatrix):
        raise TypeError(f"{fn}: out must be a BlockSparseMatrix, got {type(out).__name__}")
    xp = get_array_module(a=a, b=b, out=None if out is None else out._data)
    if a.dtype != b.dtype:
        raise TypeError(f"{fn}: a has dtype {a.dtype} but b has dtype {b.dtype}")
    check_dtype(a.dtype, f"{fn}: a.dtype")
    if out is not None and out.dtype != a.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, a and b have dtype {a.dtype}")
    _check_gpu_support(xp, a.dtype, base.blocksize, "layout", fn)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{fn}: a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"{fn}: a has shape {a.shape} and b has shape {b.shape}: a.shape[1] must equal "
            "b.shape[0]"
        )
    if (a.shape[0], b.shape[1]) != pattern.shape:
        raise ValueError(
            f"{fn}: a @ b has shape {(a.shape[0], b.shape[1])}, layout has shape {pattern.shape}"
        )
    if out is None:
        if beta != 0:
            raise ValueError(f"{fn}: beta = {beta} needs out= (the matrix to accumulate into)")
        if xp is np:
            base = base.to_cpu()
        else:
            base = base.to_gpu()
        bs = base.blocksize
        data = xp.empty((base.nnzb, bs, bs), dtype=a.dtype)
    else:
        # `is` first: a gradient built on its weight's layout skips the comparison (which
        # synchronizes on the GPU).
        if out.layout is not pattern and out.layout != pattern:
            raise ValueError(f"{fn}: out's block pattern differs from layout's")
        _check_writable(out._data, "out's data", fn)
        _check_no_overlap(xp, out._data, fn, a=a, b=b)
        base, transposed, data = out._base_layout, out._transposed, out._data
    # Stored blocks of a transposed view hold (a @ b).T = b.T @ a.T on the base layout.
    x, dy = (b, a.T) if transposed else (a.T, b)
    _backend(xp).sddmm(_row_major(x, xp), _row_major(dy, xp), base, data, alpha, beta,
                       allow_tf32)
    if out is not None:
        return out
    return BlockSparseMatrix._from_parts(data, base, transposed)
