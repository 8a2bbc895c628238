"""``BlockLayout``: the sparsity pattern of a block-sparse matrix, shared between matrices.

A layout is CSR over square blocks: ``indptr`` (int32, ``n_block_rows + 1``) and ``indices``
(int32, ``nnzb``, sorted strictly increasing within each block-row). It is immutable (numpy
arrays are stored read-only), so many matrices (an LSTM's four gates, a weight and its gradient)
can share one, and everything derived from it is computed once and cached on it: the block-row of
every block, the transposed layout, copies on the other device, and the work lists of the
products (``plan_cache``: the GPU look-up tables and the CPU reference's batches).
"""

import numpy as np

from ._arrays import check_blocksize, check_int, get_array_module, is_cupy, to_host, to_module

__all__ = ["BlockLayout"]

_INT32_MAX = np.iinfo(np.int32).max
_ARRAY_NAMES = ("indptr", "indices", "row_ids", "transpose_perm")


def _check_shape(shape, blocksize, name="shape"):
    """Return ``shape`` as a tuple of two non-negative ints, each a multiple of ``blocksize``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a (rows, cols) tuple, got {shape!r}") from None
    if len(dims) != 2:
        raise ValueError(f"{name} must have 2 entries (rows, cols), got {shape!r}")
    try:
        dims = tuple(check_int(d, name) for d in dims)
    except TypeError:
        raise TypeError(f"{name} must hold ints, got {shape!r}") from None
    if min(dims) < 0:
        raise ValueError(f"{name} must be non-negative, got {dims}")
    if dims[0] % blocksize or dims[1] % blocksize:
        raise ValueError(f"{name} {dims} is not a multiple of blocksize {blocksize}")
    if max(dims) // blocksize > _INT32_MAX:
        raise ValueError(f"{name} {dims} has more than 2**31 - 1 block-rows or block-columns")
    return dims


def _as_index_array(a, name, xp):
    """``a`` as a 1-D integer array of module ``xp`` (lists allowed; not yet copied)."""
    if not isinstance(a, np.ndarray) and not is_cupy(a):
        a = np.asarray(a)
        if a.size == 0:
            a = a.astype(np.int32)
        a = to_module(a, xp)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a


def _to_host_flags(xp, *flags):
    """Python bools of a few 0-d boolean results, in one device transfer on cupy."""
    if xp is np:
        return [bool(f) for f in flags]
    return [bool(f) for f in xp.stack(flags).get()]  # synchronize


def _row_ids(indptr, nnzb, xp):
    """Block-row of each block: (nnzb,) int32."""
    blocks = xp.arange(nnzb, dtype=np.int32)
    return (xp.searchsorted(indptr, blocks, side="right") - 1).astype(np.int32)


def _as_bool_mask(mask, name="mask"):
    """``mask`` as a 2-D bool array of its own module (nonzero = stored block).

    Raises: ValueError for a non-2-D mask or a float mask holding NaN, TypeError for
    non-numeric dtypes.
    """
    if not isinstance(mask, np.ndarray) and not is_cupy(mask):
        given = mask
        mask = np.asarray(mask)
        if mask.dtype == object:
            raise TypeError(f"{name} must be a bool array (numpy, cupy or nested lists), got "
                            f"{type(given).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_block_rows, n_block_cols), got shape {mask.shape}")
    kind = mask.dtype.kind
    if kind == "b":
        return mask
    if kind == "f":
        if bool(get_array_module(mask).isnan(mask).any()):  # synchronize
            raise ValueError(f"{name} contains NaN: a block mask must be bool (or 0/nonzero)")
        return mask != 0
    if kind in "iu":
        return mask != 0
    raise TypeError(f"{name} must be a bool or real numeric array, got dtype {mask.dtype}")


class BlockLayout:
    """Sparsity pattern of a ``shape`` matrix cut into square ``blocksize`` blocks: CSR over blocks.

    Parameters:
        indptr: (n_block_rows + 1,) integer array (numpy, cupy or list); starts at 0,
            non-decreasing, ends at ``len(indices)``.
        indices: (nnzb,) integer array, block-columns in ``[0, n_block_cols)``, strictly
            increasing within each block-row.
        shape: (rows, cols), each a multiple of ``blocksize``.
        blocksize: positive int (or a square ``(bs, bs)`` pair).

    The arrays are copied to int32 in their own module (cupy stays on the GPU). Validating cupy
    arrays synchronizes with the device.

    Raises: ValueError / TypeError naming the bad argument.
    """

    def __init__(self, indptr, indices, shape, blocksize):
        bs = check_blocksize(blocksize)
        shape = _check_shape(shape, bs)
        xp = get_array_module(indptr=indptr, indices=indices)
        indptr = _as_index_array(indptr, "indptr", xp)
        indices = _as_index_array(indices, "indices", xp)
        nbr, nbc = shape[0] // bs, shape[1] // bs
        nnzb = indices.shape[0]
        if nnzb > _INT32_MAX:
            raise ValueError(f"indices has {nnzb} blocks, more than 2**31 - 1")
        if indptr.shape[0] != nbr + 1:
            raise ValueError(
                f"indptr must have n_block_rows + 1 = {nbr + 1} entries for shape {shape} and "
                f"blocksize {bs}, got {indptr.shape[0]}"
            )
        starts_at_0, ends_at_nnzb, non_decreasing = _to_host_flags(
            xp, indptr[0] == 0, indptr[-1] == nnzb, xp.all(indptr[1:] >= indptr[:-1])
        )
        # The error paths below read single values back (synchronize): only when raising.
        if not starts_at_0:
            raise ValueError(f"indptr[0] must be 0, got {int(indptr[0])}")
        if not ends_at_nnzb:
            raise ValueError(
                f"indptr[-1] must equal len(indices) = {nnzb}, got {int(indptr[-1])}"
            )
        if not non_decreasing:
            raise ValueError("indptr must be non-decreasing")
        indptr = indptr.astype(np.int32)
        # indptr is valid, so its values fit in int32 and give the block-row of every block.
        row_ids = _row_ids(indptr, nnzb, xp)
        in_range, sorted_unique = _to_host_flags(
            xp,
            xp.all((indices >= 0) & (indices < nbc)),
            xp.all((row_ids[1:] != row_ids[:-1]) | (indices[1:] > indices[:-1])),
        )
        if not in_range:
            raise ValueError(
                f"indices must lie in [0, n_block_cols = {nbc}), got values in "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        if not sorted_unique:
            raise ValueError(
                "indices must be strictly increasing within each block-row "
                "(sorted, no duplicate blocks)"
            )
        self._set(indptr, indices.astype(np.int32), shape, bs, row_ids)

    def _set(self, indptr, indices, shape, blocksize, row_ids=None):
        for a in (indptr, indices, row_ids):
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        self._xp = get_array_module(indptr)
        self._indptr = indptr
        self._indices = indices
        self._shape = shape
        self._blocksize = blocksize
        self._row_ids = row_ids
        self._T = None
        self._transpose_perm = None
        self._copies = {}  # (array name, module name) -> copy in the other module
        self._twins = {}  # module name -> this layout on the other device
        self.plan_cache = {}  # per-layout work lists of _work_lists.py and reference.py

    @classmethod
    def _from_parts(cls, indptr, indices, shape, blocksize, row_ids=None):
        """Layout from C-contiguous int32 arrays of one module, without validation.

        The arrays are taken over (numpy ones are made read-only), not copied.
        """
        self = cls.__new__(cls)
        self._set(indptr, indices, tuple(shape), int(blocksize), row_ids)
        return self

    @classmethod
    def from_mask(cls, mask, blocksize):
        """Layout from a block mask: (n_block_rows, n_block_cols) bool numpy or cupy array.

        Integer and float masks count nonzero entries as stored. The layout lives in the mask's
        module; on cupy this synchronizes (the number of blocks sizes the arrays).

        Raises: ValueError for a non-2-D mask or NaN in a float mask, TypeError for other dtypes.
        """
        bs = check_blocksize(blocksize)
        mask = _as_bool_mask(mask)
        xp = get_array_module(mask)
        nbr, nbc = mask.shape
        _check_shape((nbr * bs, nbc * bs), bs)
        indptr = xp.zeros(nbr + 1, dtype=np.int32)
        indptr[1:] = xp.cumsum(mask.sum(axis=1))
        flat = xp.flatnonzero(mask)  # synchronize
        row_ids, indices = xp.divmod(flat, max(nbc, 1))
        return cls._from_parts(
            indptr, indices.astype(np.int32), (nbr * bs, nbc * bs), bs, row_ids.astype(np.int32)
        )

    @property
    def shape(self):
        """(rows, cols) of the matrix in elements."""
        return self._shape

    @property
    def blocksize(self):
        """Side of the square blocks (int)."""
        return self._blocksize

    @property
    def block_shape(self):
        """(n_block_rows, n_block_cols)."""
        return (self._shape[0] // self._blocksize, self._shape[1] // self._blocksize)

    @property
    def nnzb(self):
        """Number of stored blocks."""
        return self._indices.shape[0]

    @property
    def density(self):
        """nnzb / (n_block_rows * n_block_cols); 0.0 for an empty grid."""
        nbr, nbc = self.block_shape
        return self.nnzb / (nbr * nbc) if nbr * nbc else 0.0

    @property
    def device(self):
        """'gpu' if the arrays are cupy arrays, else 'cpu'."""
        return "cpu" if self._xp is np else "gpu"

    @property
    def indptr(self):
        """(n_block_rows + 1,) int32."""
        return self._indptr

    @property
    def indices(self):
        """(nnzb,) int32 block-column of each block."""
        return self._indices

    @property
    def row_ids(self):
        """(nnzb,) int32 block-row of each block (computed once)."""
        if self._row_ids is None:
            self._row_ids = _row_ids(self._indptr, self.nnzb, self._xp)
            if self._xp is np:
                self._row_ids.flags.writeable = False
        return self._row_ids

    @property
    def mask(self):
        """(n_block_rows, n_block_cols) bool array, same module as the layout (a new array)."""
        m = self._xp.zeros(self.block_shape, dtype=bool)
        m[self.row_ids, self._indices] = True
        return m

    def toarray(self):
        """The block mask, like :attr:`mask`."""
        return self.mask

    def __array__(self, dtype=None, copy=None):
        m = to_host(self.mask)
        return m if dtype is None else m.astype(dtype)

    @property
    def T(self):
        """The transposed layout (computed once; ``layout.T.T is layout``)."""
        if self._T is None:
            self._transpose()
        return self._T

    @property
    def transpose_perm(self):
        """(nnzb,) int32: block ``k`` of ``self.T`` (CSR order) is block ``transpose_perm[k]``."""
        if self._transpose_perm is None:
            self._transpose()
        return self._transpose_perm

    def _transpose(self):
        # Vectorised so that it runs on the device for cupy layouts: the transposed CSR order is
        # the order of (column, row) keys, and its indptr follows from the sorted columns.
        xp = self._xp
        nbr, nbc = self.block_shape
        nnzb = self.nnzb
        row_ids = self.row_ids
        keys = self._indices.astype(np.int64) * nbr + row_ids
        perm = xp.argsort(keys).astype(np.int32)
        t_row_ids = self._indices[perm]
        t_indices = row_ids[perm]
        # searchsorted rather than bincount + cumsum: cupy's bincount synchronizes.
        t_indptr = xp.searchsorted(t_row_ids, xp.arange(nbc + 1, dtype=np.int32)).astype(np.int32)
        inverse = xp.empty_like(perm)
        inverse[perm] = xp.arange(nnzb, dtype=np.int32)
        t = BlockLayout._from_parts(
            t_indptr, t_indices, self._shape[::-1], self._blocksize, t_row_ids
        )
        for a in (perm, inverse):
            if xp is np:
                a.flags.writeable = False
        t._T, t._transpose_perm = self, inverse
        self._T, self._transpose_perm = t, perm

    def get(self, name, xp):
        """Cached copy of array ``name`` in module ``xp`` (numpy or cupy).

        ``name`` is one of 'indptr', 'indices', 'row_ids', 'transpose_perm'. Returns the layout's
        own array when ``xp`` is its module; the first copy across devices synchronizes.
        """
        if name not in _ARRAY_NAMES:
            raise ValueError(f"name must be one of {', '.join(_ARRAY_NAMES)}, got {name!r}")
        if getattr(xp, "__name__", None) not in ("numpy", "cupy"):
            raise TypeError(f"xp must be the numpy or cupy module, got {xp!r}")
        own = getattr(self, name)
        if xp is self._xp:
            return own
        key = (name, xp.__name__)
        if key not in self._copies:
            copy = to_module(own, xp)
            if xp is np:
                copy.flags.writeable = False
            self._copies[key] = copy
        return self._copies[key]

    def _on(self, xp):
        """This layout in module ``xp`` (cached both ways, so device caches are reused)."""
        if xp is self._xp:
            return self
        twin = self._twins.get(xp.__name__)
        if twin is None:
            twin = BlockLayout._from_parts(
                self.get("indptr", xp), self.get("indices", xp), self._shape, self._blocksize
            )
            twin._twins[self._xp.__name__] = self
            self._twins[xp.__name__] = twin
        return twin

    def to_gpu(self):
        """This layout with cupy arrays (``self`` if already on the GPU; cached)."""
        import cupy

        return self._on(cupy)

    def to_cpu(self):
        """This layout with numpy arrays (``self`` if already on the CPU; cached)."""
        return self._on(np)

    def __eq__(self, other):
        """Same pattern: same shape, blocksize and arrays (compared on ``self``'s device)."""
        if self is other:
            return True
        if not isinstance(other, BlockLayout):
            return NotImplemented
        key = (self._shape, self._blocksize, self.nnzb)
        if key != (other._shape, other._blocksize, other.nnzb):
            return False
        xp = self._xp
        same = (
            xp.array_equal(self._indptr, other.get("indptr", xp))
            & xp.array_equal(self._indices, other.get("indices", xp))
        )
        return bool(same)  # synchronize

    def __hash__(self):
        # Equal patterns have equal shape, blocksize and nnzb, so this agrees with __eq__.
        return hash((self._shape, self._blocksize, self.nnzb))

    def __reduce__(self):
        # Pickles the pattern on its device (numpy or cupy arrays); the caches are rebuilt on use.
        return (BlockLayout._from_parts,
                (self._indptr, self._indices, self._shape, self._blocksize, self._row_ids))

    def __copy__(self):
        return self     # immutable: matrices share their layout

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return (
            f"BlockLayout(shape={self._shape}, blocksize={self._blocksize}, nnzb={self.nnzb}, "
            f"density={self.density:.3g}, device='{self.device}')"
        )
