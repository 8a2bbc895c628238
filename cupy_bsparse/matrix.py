"""``BlockSparseMatrix``: block-sparse storage on numpy (CPU) or cupy (GPU), like scipy's BSR.

Storage is ``data`` (nnzb, bs, bs), C-contiguous, plus a shared :class:`BlockLayout`. ``W.T`` is a
zero-copy view: it keeps ``W``'s data array and layout and sets a ``transposed`` flag, so kernels
read ``W``'s blocks in place. Internal code reads ``_data``, ``_base_layout`` and
``_transposed``; the public ``data`` / ``indices`` / ``indptr`` of a transposed view are the
canonical BSR arrays of the transposed matrix (``data`` is then materialised as a copy).

CuPy has no bfloat16 kernels: bfloat16 data is moved as ``uint16`` and computed on in float32.

Host synchronisation on the GPU (marked ``# synchronize`` where it happens): building a matrix
from cupy index arrays (validation), a dense cupy array or a cupyx matrix (counting blocks);
comparing two distinct layouts (arithmetic between matrices whose layouts are equal but not the
same object); ``get``, ``to_scipy``, ``tocsr``, ``to_cpu`` and ``to_gpu``. ``from_layout``,
arithmetic on one shared layout, ``T``, ``data`` and ``toarray`` do not synchronize.
"""

import numbers
import sys

import numpy as np

from . import layouts
from ._arrays import (
    BFLOAT16,
    astype,
    bits,
    check_blocksize,
    check_dtype,
    from_bits,
    from_float32,
    get_array_module,
    is_cupy,
    to_float32,
    to_host,
    to_module,
)
from .block_layout import _INT32_MAX, BlockLayout, _as_bool_mask, _as_index_array, _check_shape

__all__ = ["BlockSparseMatrix", "random"]

_FORMATS = ("bsr", "csr", "csc", "coo")
_NORM_ORDS = (1, -1, np.inf, -np.inf)


def _is_scipy_sparse(a):
    # scipy.sparse can only have made `a` if it is already imported; don't import it here.
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(a)


def _is_cupyx_sparse(a):
    sparse = sys.modules.get("cupyx.scipy.sparse")
    return sparse is not None and sparse.issparse(a)


def _is_array(a):
    return isinstance(a, np.ndarray) or is_cupy(a)


def _as_dense(a, name):
    """``a`` as a 2-D numpy or cupy array (array-likes and ``numpy.matrix`` become ndarrays)."""
    a = a if _is_array(a) and not isinstance(a, np.matrix) else np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    return a


def _target_dtype(src, dtype, name):
    """Storage dtype for data of dtype ``src``: ``dtype`` if given, else ``src``.

    Raises: TypeError when ``src`` is unsupported and no ``dtype`` is given, or cannot be
    converted (complex, object).
    """
    if dtype is None:
        try:
            return check_dtype(src, f"{name}.dtype")
        except TypeError as e:
            raise TypeError(f"{e}; pass dtype= to convert") from None
    target = check_dtype(dtype)
    if src != BFLOAT16 and src.kind not in "biuf":
        raise TypeError(f"{name} has dtype {src}, which cannot be converted to {target}")
    return target


def _contiguous(a):
    """``a`` itself if C-contiguous (and, on the GPU, 16-byte aligned, as the kernels' 16-byte
    block copies need), else such a copy."""
    if a.flags.c_contiguous and not (is_cupy(a) and a.data.ptr % 16):
        return a
    xp = get_array_module(a)
    out = xp.empty(a.shape, dtype=bits(a).dtype)   # fresh allocations are 256-byte aligned
    out[...] = bits(a)
    return from_bits(out, a.dtype)


def _compute_dtype(dtype):
    # Half types are computed on in float32 (numpy would round scalars to half first; cupy has
    # no bfloat16 arithmetic at all), so CPU and GPU round the same way.
    return np.dtype(np.float32) if dtype.itemsize == 2 else dtype


def _apply(fn, arrays, dtype):
    """``fn(*arrays)`` computed in :func:`_compute_dtype` and stored as ``dtype``."""
    compute = _compute_dtype(dtype)
    if compute == np.float32:
        return from_float32(fn(*(to_float32(a) for a in arrays)), dtype)
    return astype(fn(*(astype(a, compute, copy=False) for a in arrays)), dtype, copy=False)


def _result_dtype(a, b):
    """Common storage dtype of two supported dtypes (float16 with bfloat16 gives float32)."""
    if a == b:
        return a
    return np.dtype(np.float64) if max(a.itemsize, b.itemsize) == 8 else np.dtype(np.float32)


def _is_scalar(x):
    return isinstance(x, numbers.Real)


def _check_shape_arg(shape, actual):
    if shape is None:
        return
    try:
        if isinstance(shape, (str, bytes)):
            raise TypeError
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a (rows, cols) tuple, got {shape!r}") from None
    if dims != tuple(actual):
        raise ValueError(f"shape {dims} does not match the input's shape {actual}")


def _check_norm_ord(ord):
    if isinstance(ord, str):
        ok = ord == "fro"
    else:
        ok = isinstance(ord, numbers.Real) and not isinstance(ord, bool) and ord in _NORM_ORDS
    if not ok:
        raise ValueError(f"ord must be one of 'fro', 1, -1, inf, -inf, got {ord!r}")


def _host_copy(a):
    return np.array(a) if isinstance(a, np.ndarray) else to_host(a)


def _layout_for_mask(mask, shape, bs, name="mask"):
    """BlockLayout from a BlockLayout or a bool block mask, checked against ``shape`` / ``bs``."""
    if isinstance(mask, BlockLayout):
        if mask.shape != shape or mask.blocksize != bs:
            raise ValueError(
                f"{name} is a layout of shape {mask.shape} with blocksize {mask.blocksize}, "
                f"expected shape {shape} with blocksize {bs}"
            )
        return mask
    m = _as_bool_mask(mask, name)
    grid = (shape[0] // bs, shape[1] // bs)
    if m.shape != grid:
        raise ValueError(f"{name} has shape {m.shape}, expected the block grid {grid}")
    return BlockLayout.from_mask(m, bs)


def _dense_to_parts(a, bs, mask):
    """(data, layout) of a dense (R, C) array: blocks with any nonzero, or those of ``mask``."""
    xp = get_array_module(a)
    shape = _check_shape(a.shape, bs, "shape of the dense array")
    nbr, nbc = shape[0] // bs, shape[1] // bs
    blocks = bits(a).reshape(nbr, bs, nbc, bs).transpose(0, 2, 1, 3)
    if mask is None:
        # On the bfloat16 bits, a value is nonzero unless it is +0 or -0 (NaN counts).
        nonzero = (blocks & 0x7FFF) != 0 if a.dtype == BFLOAT16 else blocks != 0
        layout = BlockLayout.from_mask(nonzero.any(axis=(2, 3)), bs)
    else:
        get_array_module(a=a, mask=mask.indices if isinstance(mask, BlockLayout) else mask)
        # A list mask becomes a numpy layout: move it next to `a`.
        layout = _layout_for_mask(mask, shape, bs)._on(xp)
    data = xp.ascontiguousarray(blocks[layout.row_ids, layout.indices])
    return from_bits(data, a.dtype), layout


def _coo_to_parts(row, col, vals, shape, bs, xp):
    """(data, layout) of COO entries without duplicates (numpy or cupy arrays)."""
    nbr, nbc = shape[0] // bs, shape[1] // bs
    keys = (row // bs).astype(np.int64) * nbc + col // bs
    # Sorted unique keys are the blocks in CSR order.
    keys, block_of_entry = xp.unique(keys, return_inverse=True)  # synchronize
    row_ids, indices = xp.divmod(keys, max(nbc, 1))
    row_ids = row_ids.astype(np.int32)
    indptr = xp.searchsorted(row_ids, xp.arange(nbr + 1, dtype=np.int32)).astype(np.int32)
    data = xp.zeros((keys.shape[0], bs, bs), dtype=vals.dtype)
    data[block_of_entry.ravel(), row % bs, col % bs] = vals
    layout = BlockLayout._from_parts(indptr, indices.astype(np.int32), shape, bs, row_ids)
    return data, layout


def _scipy_to_parts(m, bs):
    """(data, layout) of a scipy.sparse array/matrix; works on copies, never modifies ``m``."""
    shape = _check_shape(m.shape, bs, "shape of the scipy.sparse input")
    if m.format == "bsr" and m.blocksize == (bs, bs):
        b = m.copy()
        b.sum_duplicates()  # also sorts indices
        return np.ascontiguousarray(b.data), BlockLayout(b.indptr, b.indices, shape, bs)
    coo = m.tocoo(copy=True)
    coo.sum_duplicates()
    return _coo_to_parts(coo.row, coo.col, coo.data, shape, bs, np)


def _cupyx_to_parts(m, bs):
    """(data, layout) of a cupyx.scipy.sparse matrix, on the GPU; never modifies ``m``."""
    import cupy

    shape = _check_shape(m.shape, bs, "shape of the cupyx.scipy.sparse input")
    coo = m.tocoo(copy=True)
    coo.sum_duplicates()  # synchronize (cupyx reads the count of distinct entries back)
    return _coo_to_parts(coo.row, coo.col, coo.data, shape, bs, cupy)


class BlockSparseMatrix:
    """Block-sparse matrix with square blocks, on the CPU (numpy) or GPU (cupy).

    ``BlockSparseMatrix(arg, shape=None, dtype=None, copy=False, blocksize=None)`` (the
    parameter order of ``scipy.sparse.bsr_array``), where ``arg`` is one of:

    - ``(data, indices, indptr)``: ``data`` (nnzb, bs, bs), CSR over blocks; ``shape`` required.
      ``data`` is kept without a copy when ``copy=False`` and it is C-contiguous of the
      requested dtype (on the GPU, also 16-byte aligned).
    - a dense 2-D numpy or cupy array: ``blocksize`` required; blocks with any nonzero (NaN
      included) are stored.
    - a ``scipy.sparse`` array or matrix (any format), or a ``cupyx.scipy.sparse`` matrix (the
      result is then on the GPU): ``blocksize`` required, since scipy cannot infer 8/16/32.
      Duplicates are summed; blocks holding any stored entry (explicit zeros too) are kept.
    - another ``BlockSparseMatrix`` (data shared unless ``copy`` or a new ``dtype``).

    ``blocksize`` is an int or a ``(bs, bs)`` pair. ``dtype`` is float16, bfloat16
    (``ml_dtypes``), float32 or float64; other input dtypes need an explicit ``dtype``.
    The GPU kernels take block sizes 8, 16, 32 and 64; storage takes any positive size.

    Raises: ValueError / TypeError naming the argument: shape not a multiple of blocksize, bad
    blocksize or dtype, data shape mismatch, bad indices/indptr, mixed CPU/GPU inputs.
    Inputs are never modified.
    """

    format = "bsr"
    ndim = 2
    # The layout keeps indices sorted and unique, so the arrays are always canonical.
    has_canonical_format = True
    has_sorted_indices = True
    # Make numpy/cupy defer `x @ W`, `x * W` to our reflected operators.
    __array_priority__ = 100
    __array_ufunc__ = None

    def __init__(self, arg, shape=None, dtype=None, copy=False, blocksize=None):
        bs = None if blocksize is None else check_blocksize(blocksize)
        if isinstance(arg, BlockSparseMatrix):
            _check_shape_arg(shape, arg.shape)
            if bs is not None and bs != arg._base_layout.blocksize:
                raise ValueError(
                    f"blocksize {bs} differs from the input's blocksize "
                    f"{arg._base_layout.blocksize} (re-blocking is not supported)"
                )
            target = _target_dtype(arg.dtype, dtype, "arg")
            self._set(astype(arg._data, target, copy=copy), arg._base_layout, arg._transposed)
            return
        if isinstance(arg, tuple) and len(arg) == 2:
            # scipy reads a 2-tuple as (data, (row, col)) or as a shape
            raise TypeError(
                "arg: a 2-tuple is scipy's (data, (row, col)) or a shape, neither of which "
                "BlockSparseMatrix takes: build a scipy.sparse.coo_array and pass it with "
                "blocksize=, or pass a dense array as an array"
            )
        if isinstance(arg, tuple) and len(arg) == 3:
            self._init_from_bsr_parts(arg, shape, bs, dtype, copy)
            return
        if isinstance(arg, BlockLayout):
            raise TypeError("arg is a BlockLayout: use BlockSparseMatrix.from_layout(layout, data)")
        if bs is None:
            raise ValueError(
                f"blocksize is required to build a BlockSparseMatrix from {type(arg).__name__}"
            )
        if _is_scipy_sparse(arg):
            target = _target_dtype(arg.dtype, dtype, "arg")
            data, layout = _scipy_to_parts(arg, bs)
        elif _is_cupyx_sparse(arg):
            target = _target_dtype(arg.dtype, dtype, "arg")
            data, layout = _cupyx_to_parts(arg, bs)
        else:
            a = _as_dense(arg, "a dense arg")
            target = _target_dtype(a.dtype, dtype, "arg")
            data, layout = _dense_to_parts(a, bs, None)
        _check_shape_arg(shape, layout.shape)
        self._set(astype(data, target, copy=False), layout, False)

    def _init_from_bsr_parts(self, arg, shape, bs, dtype, copy):
        data, indices, indptr = arg
        if shape is None:
            raise ValueError("shape is required with a (data, indices, indptr) tuple")
        xp = get_array_module(data=data, indices=indices, indptr=indptr)
        if not _is_array(data):
            data = to_module(np.asarray(data), xp)
        if data.ndim != 3 or data.shape[1] != data.shape[2]:
            raise ValueError(f"data must have shape (nnzb, bs, bs), got {data.shape}")
        data_bs = check_blocksize(data.shape[1], "data.shape[1]")
        if bs is not None and bs != data_bs:
            raise ValueError(f"blocksize {bs} does not match data's blocks {data.shape[1:]}")
        target = _target_dtype(data.dtype, dtype, "data")
        layout = BlockLayout(
            _as_index_array(indptr, "indptr", xp),
            _as_index_array(indices, "indices", xp),
            shape,
            data_bs,
        )
        if data.shape[0] != layout.nnzb:
            raise ValueError(
                f"data holds {data.shape[0]} blocks but indices has {layout.nnzb} entries"
            )
        self._set(_contiguous(astype(data, target, copy=copy)), layout, False)

    def _set(self, data, layout, transposed):
        self._data = data
        self._base_layout = layout
        self._transposed = transposed

    @classmethod
    def _from_parts(cls, data, layout, transposed=False):
        """Matrix from C-contiguous ``data`` (nnzb, bs, bs) and ``layout``, without validation."""
        self = cls.__new__(cls)
        self._set(data, layout, transposed)
        return self

    @classmethod
    def from_dense(cls, a, blocksize, mask=None, *, dtype=None):
        """Matrix from a dense (R, C) numpy or cupy array.

        ``mask``: optional (R/bs, C/bs) bool block mask (numpy or cupy, same device as ``a``) or
        BlockLayout; the blocks it selects are stored even when all zero, the others dropped.
        Without it, blocks with any nonzero are stored.
        """
        bs = check_blocksize(blocksize)
        a = _as_dense(a, "a")
        target = _target_dtype(a.dtype, dtype, "a")
        data, layout = _dense_to_parts(a, bs, mask)
        return cls._from_parts(astype(data, target, copy=False), layout)

    @classmethod
    def from_layout(cls, layout, data, *, copy=False):
        """Matrix with pattern ``layout`` and blocks ``data`` (nnzb, bs, bs) on the same device.

        ``data`` is kept without a copy when ``copy=False`` and it is C-contiguous (on the GPU,
        also 16-byte aligned).
        """
        if not isinstance(layout, BlockLayout):
            raise TypeError(f"layout must be a BlockLayout, got {type(layout).__name__}")
        xp = get_array_module(layout=layout.indices, data=data)
        if not _is_array(data):
            data = to_module(np.asarray(data), xp)
        bs = layout.blocksize
        if data.shape != (layout.nnzb, bs, bs):
            raise ValueError(
                f"data must have shape (nnzb, bs, bs) = {(layout.nnzb, bs, bs)}, got {data.shape}"
            )
        target = _target_dtype(data.dtype, None, "data")
        return cls._from_parts(_contiguous(astype(data, target, copy=copy)), layout)

    @classmethod
    def from_scipy(cls, m, blocksize, *, dtype=None):
        """Matrix from a scipy.sparse array or matrix (any format); see the class docstring."""
        if not _is_scipy_sparse(m):
            raise TypeError(f"m must be a scipy.sparse array or matrix, got {type(m).__name__}")
        return cls(m, blocksize=blocksize, dtype=dtype)

    # ---------------------------------------------------------------------------------------
    # properties

    @property
    def _xp(self):
        return get_array_module(self._data)

    @property
    def shape(self):
        """(rows, cols)."""
        shape = self._base_layout.shape
        return shape[::-1] if self._transposed else shape

    @property
    def blocksize(self):
        """(bs, bs), as in scipy."""
        bs = self._base_layout.blocksize
        return (bs, bs)

    @property
    def layout(self):
        """The BlockLayout of this matrix (``W.layout.T`` for the view ``W.T``)."""
        return self._base_layout.T if self._transposed else self._base_layout

    @property
    def nnzb(self):
        """Number of stored blocks."""
        return self._base_layout.nnzb

    @property
    def nnz(self):
        """Number of stored values, zeros included: nnzb * bs * bs."""
        return self.nnzb * self._base_layout.blocksize ** 2

    @property
    def density(self):
        """Fraction of stored blocks (0.0 for an empty grid)."""
        return self._base_layout.density

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        """'gpu' if the data is a cupy array, else 'cpu'."""
        return "gpu" if is_cupy(self._data) else "cpu"

    @property
    def transposed(self):
        """True for a zero-copy transposed view (``W.T``)."""
        return self._transposed

    @property
    def data(self):
        """(nnzb, bs, bs) blocks in CSR order of :attr:`layout`.

        For a transposed view this is a new array ``data[perm].transpose(0, 2, 1)`` (read-only on
        numpy): writes to it do not reach the matrix.
        """
        if not self._transposed:
            return self._data
        perm = self._base_layout.transpose_perm
        moved = bits(self._data)[perm].transpose(0, 2, 1)
        data = from_bits(self._xp.ascontiguousarray(moved), self.dtype)
        if isinstance(data, np.ndarray):
            data.flags.writeable = False
        return data

    @property
    def indices(self):
        """(nnzb,) int32 block-columns (of :attr:`layout`)."""
        return self.layout.indices

    @property
    def indptr(self):
        """(n_block_rows + 1,) int32 (of :attr:`layout`)."""
        return self.layout.indptr

    @property
    def T(self):
        """Transposed view: shares the data array and layout with ``self`` (no copy)."""
        return self._from_parts(self._data, self._base_layout, not self._transposed)

    def transpose(self, axes=None, copy=False):
        """:attr:`T`, with scipy's signature: ``axes`` must be None or (1, 0); ``copy=True``
        gives a view on a copy of the data instead of on this matrix's data.
        """
        if axes is not None and (not isinstance(axes, (tuple, list)) or tuple(axes) != (1, 0)):
            raise ValueError(f"axes must be None or (1, 0) for a 2-D matrix, got {axes!r}")
        return self.T.copy() if copy else self.T

    def sort_indices(self):
        """Nothing to do (scipy compatibility): indices are always sorted."""

    def sum_duplicates(self):
        """Nothing to do (scipy compatibility): a layout holds no duplicate blocks."""

    # ---------------------------------------------------------------------------------------
    # conversions

    def toarray(self):
        """Dense (R, C) array in the matrix's module and dtype."""
        base = self._base_layout
        nbr, nbc = base.block_shape
        bs = base.blocksize
        stored = bits(self._data)
        grid = self._xp.zeros((nbr, nbc, bs, bs), dtype=stored.dtype)
        grid[base.row_ids, base.indices] = stored
        # grid axes are (block-row, block-col, i, j); dense W is (block-row, i, block-col, j)
        # and W.T is (block-col, j, block-row, i).
        axes = (1, 3, 0, 2) if self._transposed else (0, 2, 1, 3)
        dense = grid.transpose(axes).reshape(self.shape)
        return from_bits(self._xp.ascontiguousarray(dense), self.dtype)

    def _check_scipy_dtype(self, library):
        if self.dtype.itemsize == 2:
            raise TypeError(
                f"{library} does not support {self.dtype}: convert with .astype(numpy.float32) "
                "first"
            )

    def get(self):
        """Host copy as ``scipy.sparse.bsr_array`` (synchronizes for GPU matrices).

        Raises: TypeError for float16 / bfloat16, which scipy.sparse does not support.
        """
        import scipy.sparse

        self._check_scipy_dtype("scipy.sparse")
        data, layout = self.data, self.layout
        bs = layout.blocksize
        return scipy.sparse.bsr_array(
            (_host_copy(data), _host_copy(layout.indices), _host_copy(layout.indptr)),
            shape=self.shape,
            blocksize=(bs, bs),
        )

    def to_scipy(self, format="bsr"):
        """Host copy as a scipy.sparse array of ``format`` ('bsr', 'csr', 'csc' or 'coo')."""
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
        return self.get().asformat(format)

    def _coo_arrays(self):
        """(row, col, value) of every stored value, in the matrix's module."""
        xp = self._xp
        data, layout = self.data, self.layout
        bs = layout.blocksize
        index_dtype = np.int32 if max(self.shape) <= _INT32_MAX else np.int64
        offsets = xp.arange(bs, dtype=index_dtype)
        rows = layout.row_ids.astype(index_dtype)[:, None, None] * bs + offsets[None, :, None]
        cols = layout.indices.astype(index_dtype)[:, None, None] * bs + offsets[None, None, :]
        return (
            xp.broadcast_to(rows, data.shape).ravel(),
            xp.broadcast_to(cols, data.shape).ravel(),
            data.ravel(),
        )

    def _cupyx_coo(self):
        import cupyx.scipy.sparse

        self._check_scipy_dtype("cupyx.scipy.sparse")
        rows, cols, vals = self._coo_arrays()
        return cupyx.scipy.sparse.coo_matrix((vals, (rows, cols)), shape=self.shape)

    def tocsr(self):
        """CSR copy: ``scipy.sparse.csr_array`` on the CPU, ``cupyx.scipy.sparse.csr_matrix`` on
        the GPU (which synchronizes). Explicit zeros are kept.

        Raises: TypeError for float16 / bfloat16 (unsupported by scipy.sparse and cupyx).
        """
        if self.device == "cpu":
            return self.to_scipy("csr")
        # cupyx's COO -> CSR sums duplicates first, which reads a count back.
        return self._cupyx_coo().tocsr()  # synchronize

    def tocoo(self):
        """COO copy: ``scipy.sparse.coo_array`` on the CPU, ``cupyx.scipy.sparse.coo_matrix`` on
        the GPU.

        Raises: TypeError for float16 / bfloat16.
        """
        if self.device == "cpu":
            return self.to_scipy("coo")
        return self._cupyx_coo()

    def to_gpu(self):
        """This matrix on the GPU (``self`` if already there; the copy synchronizes). The layout's
        GPU copy is cached.
        """
        import cupy

        if self.device == "gpu":
            return self
        return self._from_parts(
            to_module(self._data, cupy), self._base_layout._on(cupy), self._transposed
        )

    def to_cpu(self):
        """This matrix on the CPU (``self`` if already there; synchronizes otherwise)."""
        if self.device == "cpu":
            return self
        return self._from_parts(to_host(self._data), self._base_layout._on(np), self._transposed)

    def astype(self, dtype, copy=True):
        """Matrix with data cast to ``dtype`` (same layout object); ``self`` if ``copy=False``
        and the dtype already matches.
        """
        dtype = check_dtype(dtype)
        if not copy and dtype == self.dtype:
            return self
        return self._from_parts(
            astype(self._data, dtype), self._base_layout, self._transposed
        )

    def copy(self):
        """Copy of the data (the immutable layout is shared)."""
        return self.astype(self.dtype)

    # ---------------------------------------------------------------------------------------
    # arithmetic

    def _scaled(self, fn):
        data = _apply(fn, (self._data,), self.dtype)
        return self._from_parts(data, self._base_layout, self._transposed)

    def _compute_scalar(self, alpha):
        return _compute_dtype(self.dtype).type(alpha)

    def _elementwise(self, other, fn, name):
        """``fn`` of the stored values of ``self`` and ``other`` (same layout pattern)."""
        get_array_module(self=self._data, other=other._data)
        if self.shape != other.shape or self.blocksize != other.blocksize:
            raise ValueError(
                f"{name}: shapes/blocksizes differ: {self.shape}/{self.blocksize} vs "
                f"{other.shape}/{other.blocksize}"
            )
        dtype = _result_dtype(self.dtype, other.dtype)
        # Comparing two distinct layouts synchronizes on the GPU.
        if self._transposed == other._transposed and (
            self._base_layout is other._base_layout or self._base_layout == other._base_layout
        ):
            data = _apply(fn, (self._data, other._data), dtype)
            return self._from_parts(data, self._base_layout, self._transposed)
        if self.layout != other.layout:
            raise ValueError(f"{name} needs two matrices with the same block layout")
        return self._from_parts(_apply(fn, (self.data, other.data), dtype), self.layout)

    def __neg__(self):
        return self._scaled(lambda d: -d)

    def __mul__(self, other):
        if _is_scalar(other):
            alpha = self._compute_scalar(other)
            return self._scaled(lambda d: d * alpha)
        if isinstance(other, BlockSparseMatrix):
            return self._elementwise(other, lambda a, b: a * b, "*")
        return NotImplemented

    def __rmul__(self, other):
        if _is_scalar(other):
            return self * other
        return NotImplemented

    def __truediv__(self, other):
        if _is_scalar(other):
            alpha = self._compute_scalar(other)
            return self._scaled(lambda d: d / alpha)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, BlockSparseMatrix):
            return self._elementwise(other, lambda a, b: a + b, "+")
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, BlockSparseMatrix):
            return self._elementwise(other, lambda a, b: a - b, "-")
        return NotImplemented

    def multiply(self, other):
        """Elementwise product with a scalar or a matrix of the same layout pattern.

        Raises: ValueError for a different layout, TypeError for other operand types.
        """
        if not (_is_scalar(other) or isinstance(other, BlockSparseMatrix)):
            raise TypeError(
                f"other must be a real scalar or a BlockSparseMatrix, got {type(other).__name__}"
            )
        return self * other

    def block_norms(self, ord="fro"):
        """Norm of every stored block, in CSR order of :attr:`layout`: (nnzb,) array.

        ``ord``: 'fro', 1, -1, numpy.inf or -numpy.inf (as in ``numpy.linalg.norm``). float32 for
        half and float32 data, float64 for float64.
        """
        _check_norm_ord(ord)
        data = self.data
        if self.dtype != np.float64:
            data = to_float32(data)
        return self._xp.linalg.norm(data, ord=ord, axis=(1, 2))

    def __matmul__(self, other):
        from . import ops

        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        from . import ops

        return ops.matmul(other, self)

    def __repr__(self):
        view = ", transposed view" if self._transposed else ""
        return (
            f"<BlockSparseMatrix shape={self.shape} blocksize={self.blocksize} "
            f"nnzb={self.nnzb} density={self.density:.3g} dtype={self.dtype} "
            f"device='{self.device}'{view}>"
        )


def random(shape, blocksize, density=None, *, layout=None, dtype=np.float32, seed=None,
           device="cpu"):
    """Random matrix: standard normal values scaled by ``1/sqrt(shape[0])``.

    Exactly one of ``density`` (fraction of stored blocks, see :func:`layouts.random`) and
    ``layout`` (a BlockLayout, shared by the result when it is on ``device``, or a bool block
    mask) must be given. ``seed``: int, None or ``numpy.random.Generator``; the same seed gives
    the same matrix (values drawn in float64, then rounded to ``dtype``) for every dtype, on the
    CPU and the GPU. ``device``: 'cpu' or 'gpu' (values are drawn on the host and copied, which
    synchronizes).
    """
    bs = check_blocksize(blocksize)
    shape = _check_shape(shape, bs)
    dtype = check_dtype(dtype)
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if (density is None) == (layout is None):
        raise ValueError("give exactly one of density and layout")
    rng = layouts._rng(seed)  # the generators' seed rules and errors
    if layout is None:
        nbr, nbc = shape[0] // bs, shape[1] // bs
        if nbr and nbc:
            mask = layouts.random(nbr, nbc, density, seed=rng)
        else:   # an empty grid: nothing to draw (layouts.random wants one block at least)
            layouts._check_fraction("density", density)
            mask = np.zeros((nbr, nbc), dtype=bool)
        layout = BlockLayout.from_mask(mask, bs)
    else:
        # Values are drawn on the host, so a mask may live on either device.
        mask = to_host(layout) if _is_array(layout) else layout
        layout = _layout_for_mask(mask, shape, bs, "layout")
    values = rng.standard_normal((layout.nnzb, bs, bs))
    values /= np.sqrt(max(shape[0], 1))
    data = astype(values, dtype, copy=False)
    if device == "gpu":
        import cupy

        return BlockSparseMatrix._from_parts(to_module(data, cupy), layout._on(cupy))
    return BlockSparseMatrix._from_parts(data, layout._on(np))
