import ml_dtypes
import numpy as np
import pytest
import scipy.sparse as sp

import cupy_bsparse as cb
from cupy_bsparse import BlockLayout, BlockSparseMatrix

# Random masks with an empty block-row and block-column, as in the layout tests.
from test_block_layout import make_mask

BF16 = np.dtype(ml_dtypes.bfloat16)
ALL_DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
# (n_block_rows, n_block_cols, density); densities 0 and 1 and empty rows/columns included.
GRIDS = [(1, 1, 0.0), (1, 1, 1.0), (3, 5, 0.0), (3, 5, 0.3), (4, 4, 0.5), (6, 4, 1.0),
         (7, 5, 0.4)]
BLOCKSIZES = [1, 2, 8, 16, 32, 64]


def make_dense(mask, bs, dtype=np.float32, seed=0):
    """Dense array whose nonzero blocks are exactly ``mask`` (every stored value nonzero)."""
    rng = np.random.default_rng(seed)
    nbr, nbc = mask.shape
    values = rng.uniform(0.5, 2.0, (nbr * bs, nbc * bs)) * rng.choice([-1, 1], (nbr * bs, nbc * bs))
    block_mask = np.kron(mask, np.ones((bs, bs), bool))
    return np.where(block_mask, values, 0).astype(dtype)


def dense_blocks(dense, bs, layout):
    """Reference (nnzb, bs, bs) blocks of ``dense`` at ``layout``'s positions, in CSR order."""
    rows, cols = np.nonzero(np.asarray(layout))
    return np.stack([dense[r * bs:(r + 1) * bs, c * bs:(c + 1) * bs] for r, c in zip(rows, cols)]
                    ) if len(rows) else np.zeros((0, bs, bs), dense.dtype)


def assert_bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def matrix(nbr=4, nbc=6, density=0.5, bs=4, dtype=np.float32, seed=0):
    mask = make_mask(nbr, nbc, density, seed)
    dense = make_dense(mask, bs, dtype, seed)
    return BlockSparseMatrix(dense, blocksize=bs), dense


def scipy_arrays(m):
    return {name: getattr(m, name).copy() for name in ("data", "indices", "indptr", "row", "col")
            if hasattr(m, name)}


# ---------------------------------------------------------------------------------------------
# construction from dense, BSR parts, layouts


@pytest.mark.parametrize("bs", BLOCKSIZES)
@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_from_dense_matches_scipy_bsr(nbr, nbc, density, bs):
    mask = make_mask(nbr, nbc, density)
    dense = make_dense(mask, bs)
    before = dense.copy()
    w = BlockSparseMatrix(dense, blocksize=bs)
    ref = sp.bsr_array(dense, blocksize=(bs, bs))
    ref.sort_indices()
    np.testing.assert_array_equal(dense, before)
    assert w.shape == dense.shape and w.blocksize == (bs, bs) and w.dtype == np.float32
    assert w.nnzb == mask.sum() and w.nnz == mask.sum() * bs * bs
    np.testing.assert_array_equal(np.asarray(w.layout), mask)
    np.testing.assert_array_equal(w.indptr, ref.indptr)
    np.testing.assert_array_equal(w.indices, ref.indices)
    np.testing.assert_array_equal(w.data, ref.data)
    assert w.data.flags.c_contiguous and w.data.shape == (w.nnzb, bs, bs)
    np.testing.assert_array_equal(w.toarray(), dense)
    assert not np.shares_memory(w.data, dense)


@pytest.mark.parametrize("bs", [1, 8, 32])
@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_bsr_parts_round_trip(nbr, nbc, density, bs):
    dense = make_dense(make_mask(nbr, nbc, density, seed=1), bs, np.float64, seed=1)
    ref = sp.bsr_array(dense, blocksize=(bs, bs))
    ref.sort_indices()
    data, indices, indptr = ref.data.copy(), ref.indices.astype(np.int64), ref.indptr.copy()
    w = BlockSparseMatrix((data, indices, indptr), shape=dense.shape)
    assert w.data is data  # copy=False keeps a C-contiguous array of a supported dtype
    np.testing.assert_array_equal(w.toarray(), dense)
    copied = BlockSparseMatrix((data, indices, indptr), shape=dense.shape, copy=True)
    assert not np.shares_memory(copied.data, data)
    as_f32 = BlockSparseMatrix((data, indices, indptr), shape=dense.shape, dtype=np.float32)
    assert as_f32.dtype == np.float32
    np.testing.assert_array_equal(as_f32.toarray(), dense.astype(np.float32))
    back = w.get()
    assert isinstance(back, sp.bsr_array) and back.blocksize == (bs, bs)
    np.testing.assert_array_equal(back.toarray(), dense)
    np.testing.assert_array_equal(back.indices, ref.indices)
    np.testing.assert_array_equal(back.indptr, ref.indptr)
    np.testing.assert_array_equal(back.data, ref.data)
    assert not np.shares_memory(back.data, w.data)


def test_bsr_parts_from_lists_and_non_contiguous_data():
    data = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4).transpose(0, 2, 1)
    w = BlockSparseMatrix((data, [1, 0], [0, 1, 2]), shape=(8, 8))
    assert w.data.flags.c_contiguous and not np.shares_memory(w.data, data)
    dense = w.toarray()
    np.testing.assert_array_equal(dense[0:4, 4:8], data[0])
    np.testing.assert_array_equal(dense[4:8, 0:4], data[1])
    listed = BlockSparseMatrix((data.tolist(), [1, 0], [0, 1, 2]), shape=(8, 8))
    assert listed.dtype == np.float64
    np.testing.assert_array_equal(listed.toarray(), dense)
    from_list = BlockSparseMatrix.from_layout(w.layout, data.tolist())
    assert from_list.layout is w.layout
    np.testing.assert_array_equal(from_list.toarray(), dense)
    empty = BlockSparseMatrix((np.zeros((0, 2, 2)), [], [0, 0]), shape=(2, 6))
    assert empty.nnzb == 0 and empty.density == 0.0
    np.testing.assert_array_equal(empty.toarray(), np.zeros((2, 6)))


def test_positional_parameters_follow_scipy_bsr_array():
    # bsr_array(arg1, shape, dtype, copy, blocksize): a scipy user's positional call works.
    dense = make_dense(make_mask(3, 4, 0.5), 4, np.float64)
    ref = sp.bsr_array(dense, dense.shape, np.float32, False, (4, 4))
    w = BlockSparseMatrix(dense, dense.shape, np.float32, False, (4, 4))
    assert w.dtype == ref.dtype and w.blocksize == ref.blocksize
    np.testing.assert_array_equal(w.toarray(), ref.toarray())
    data = w.data
    assert BlockSparseMatrix((data, w.indices, w.indptr), w.shape, None, False).data is data
    assert BlockSparseMatrix((data, w.indices, w.indptr), w.shape, None, True).data is not data


def test_from_dense_with_mask_keeps_zero_blocks_and_drops_others():
    mask = np.array([[True, False, True], [False, False, True]])
    dense = np.ones((4, 6), np.float32)
    dense[0:2, 4:6] = 0  # selected but all zero: stored
    w = BlockSparseMatrix.from_dense(dense, 2, mask=mask)
    np.testing.assert_array_equal(np.asarray(w.layout), mask)
    expected = np.where(np.kron(mask, np.ones((2, 2), bool)), dense, 0)
    np.testing.assert_array_equal(w.toarray(), expected)
    np.testing.assert_array_equal(w.data[1], np.zeros((2, 2)))
    shared = BlockSparseMatrix.from_dense(dense, 2, mask=w.layout)
    assert shared.layout is w.layout
    np.testing.assert_array_equal(shared.data, w.data)
    as_f16 = BlockSparseMatrix.from_dense(dense, 2, mask=mask, dtype=np.float16)
    assert as_f16.dtype == np.float16
    np.testing.assert_array_equal(as_f16.toarray(), expected.astype(np.float16))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_from_dense_keeps_nan_blocks_and_drops_negative_zero_blocks(dtype):
    dense = np.zeros((4, 4), dtype)
    dense[0, 3] = np.nan
    dense[2, 0] = -0.0
    dense[3, 2] = dtype.type(2.0 ** -24 if dtype.itemsize == 2 else 1e-40)   # tiny, not zero
    w = BlockSparseMatrix.from_dense(dense, 2)
    np.testing.assert_array_equal(np.asarray(w.layout), [[False, True], [False, True]])
    np.testing.assert_array_equal(w.toarray().astype(np.float64), dense.astype(np.float64))


def test_from_dense_accepts_lists_and_int_data_with_dtype():
    w = BlockSparseMatrix([[1, 0], [0, 0]], blocksize=1, dtype=np.float64)
    assert w.dtype == np.float64 and w.nnzb == 1
    np.testing.assert_array_equal(w.toarray(), [[1, 0], [0, 0]])


def test_from_layout_shares_data_and_layout():
    layout = BlockLayout.from_mask(make_mask(3, 4, 0.5), 8)
    data = np.random.default_rng(0).standard_normal((layout.nnzb, 8, 8)).astype(np.float32)
    w = BlockSparseMatrix.from_layout(layout, data)
    assert w.layout is layout and w.data is data
    v = BlockSparseMatrix.from_layout(layout, data, copy=True)
    assert v.layout is layout and not np.shares_memory(v.data, data)
    np.testing.assert_array_equal(v.data, data)
    dense = w.toarray()
    np.testing.assert_array_equal(dense_blocks(dense, 8, layout), data)


def test_copy_of_matrix_argument():
    w, _ = matrix()
    shared = BlockSparseMatrix(w)
    assert shared._data is w._data and shared.layout is w.layout
    copied = BlockSparseMatrix(w, copy=True)
    assert not np.shares_memory(copied.data, w.data) and copied.layout is w.layout
    cast = BlockSparseMatrix(w.T, dtype=np.float64)
    assert cast.dtype == np.float64 and cast.shape == w.shape[::-1]
    np.testing.assert_array_equal(cast.toarray(), w.toarray().T.astype(np.float64))


def test_random_is_reproducible_and_scaled():
    a = cb.random((256, 128), 16, 0.5, seed=7)
    b = cb.random((256, 128), 16, 0.5, seed=7)
    c = cb.random((256, 128), 16, 0.5, seed=8)
    assert a.layout == b.layout and np.array_equal(a.data, b.data)
    assert not np.array_equal(a.toarray(), c.toarray())
    assert a.nnzb == round(0.5 * 16 * 8) and a.dtype == np.float32 and a.device == "cpu"
    assert abs(a.data.std() * np.sqrt(256) - 1) < 0.1


def test_random_with_layout_and_dtypes():
    layout = BlockLayout.from_mask(make_mask(4, 4, 0.5), 8)
    w = cb.random((32, 32), 8, layout=layout, dtype=np.float64, seed=1)
    assert w.layout is layout and w.dtype == np.float64
    m = cb.random((32, 32), 8, layout=np.asarray(layout), dtype=BF16, seed=1)
    assert m.layout == layout and m.dtype == BF16
    assert_bits_equal(m.data, w.data.astype(np.float32).astype(BF16))
    with pytest.raises(ValueError, match="exactly one of density and layout"):
        cb.random((32, 32), 8)
    with pytest.raises(ValueError, match="exactly one of density and layout"):
        cb.random((32, 32), 8, 0.5, layout=layout)
    with pytest.raises(ValueError, match="layout is a layout of shape"):
        cb.random((64, 32), 8, layout=layout)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        cb.random((32, 32), 8, 0.5, device="cuda")
    with pytest.raises(TypeError, match="dtype must be one of"):
        cb.random((32, 32), 8, 0.5, dtype=np.int32)
    with pytest.raises(ValueError, match="not a multiple of blocksize"):
        cb.random((30, 32), 8, 0.5)
    for seed, error in [(True, TypeError), (1.5, TypeError), (-1, ValueError)]:
        with pytest.raises(error, match="seed must be"):
            cb.random((32, 32), 8, 0.5, seed=seed)


# ---------------------------------------------------------------------------------------------
# scipy interop


def _unsorted_compressed(dense):
    """CSR arrays of ``dense`` with every row reversed and its first entry split in two."""
    csr = sp.csr_array(dense)
    data, indices, indptr = [], [], [0]
    for r in range(dense.shape[0]):
        cols = csr.indices[csr.indptr[r]:csr.indptr[r + 1]][::-1]
        vals = csr.data[csr.indptr[r]:csr.indptr[r + 1]][::-1].copy()
        if len(cols):
            cols = np.append(cols, cols[-1])
            vals[-1] /= 2
            vals = np.append(vals, vals[-1])
        data.extend(vals)
        indices.extend(cols)
        indptr.append(len(indices))
    return np.array(data), np.array(indices, np.int32), np.array(indptr, np.int32)


def _unsorted_bsr(dense, bs):
    """BSR arrays of ``dense`` with the first block-row reversed and its first block split."""
    bsr = sp.bsr_array(dense, blocksize=(bs, bs))
    bsr.sort_indices()
    end = bsr.indptr[1]
    assert end >= 2
    data = np.concatenate([bsr.data[:end][::-1], np.ones((1, bs, bs)), bsr.data[end:]])
    data[end - 1] -= 1  # the reversed row's last block is the original first block
    indices = np.concatenate([bsr.indices[:end][::-1], bsr.indices[:1], bsr.indices[end:]])
    indptr = bsr.indptr.copy()
    indptr[1:] += 1
    return data, indices, indptr


def _scipy_inputs():
    """Scipy inputs of every format, with duplicates and unsorted indices, and their values."""
    rng = np.random.default_rng(4)
    shape = (16, 24)
    row = rng.integers(0, shape[0], 60)
    col = rng.integers(0, shape[1], 60)
    row[:6], col[:6] = row[6:12], col[6:12]  # duplicates
    row[0], col[0] = 0, 0  # the first block-row holds two blocks for _unsorted_bsr
    row[1], col[1] = 0, 9
    vals = rng.standard_normal(60)
    dense = np.zeros(shape)
    np.add.at(dense, (row, col), vals)
    inputs = {}
    for kind in ("array", "matrix"):
        inputs[f"coo_{kind}"] = getattr(sp, f"coo_{kind}")((vals, (row, col)), shape=shape)
        inputs[f"csr_{kind}"] = getattr(sp, f"csr_{kind}")(_unsorted_compressed(dense), shape=shape)
        inputs[f"csc_{kind}"] = getattr(sp, f"csc_{kind}")(_unsorted_compressed(dense.T),
                                                           shape=shape)
        inputs[f"bsr_{kind}"] = getattr(sp, f"bsr_{kind}")(_unsorted_bsr(dense, 8), shape=shape)
    return inputs, dense


SCIPY_INPUTS, SCIPY_DENSE = _scipy_inputs()


@pytest.mark.parametrize("bs", [1, 2, 4, 8])
@pytest.mark.parametrize("name", sorted(SCIPY_INPUTS))
def test_from_scipy_sums_duplicates_and_leaves_input_untouched(name, bs):
    m = SCIPY_INPUTS[name]
    dense = SCIPY_DENSE
    assert m.format == name[:3]
    before = scipy_arrays(m)
    assert not m.has_canonical_format  # the inputs really are unsorted / duplicated
    w = BlockSparseMatrix(m, blocksize=bs)
    after = scipy_arrays(m)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert not m.has_canonical_format
    assert w.dtype == np.float64 and w.shape == dense.shape
    np.testing.assert_allclose(w.toarray(), dense, rtol=1e-14, atol=1e-14)
    # Stored blocks: those holding any stored entry (a bsr input's explicit zeros included).
    stored = m.tocoo()
    mask = np.zeros((dense.shape[0] // bs, dense.shape[1] // bs), bool)
    mask[stored.row // bs, stored.col // bs] = True
    np.testing.assert_array_equal(np.asarray(w.layout), mask)
    assert BlockSparseMatrix.from_scipy(m, bs).layout == w.layout


@pytest.mark.parametrize("fmt", ["bsr", "csr", "csc", "coo"])
def test_scipy_round_trip_is_exact(fmt):
    w, dense = matrix(5, 7, 0.4, bs=8, dtype=np.float64)
    s = w.to_scipy(fmt)
    assert s.format == fmt and isinstance(s, sp.sparray)
    np.testing.assert_array_equal(s.toarray(), dense)
    back = BlockSparseMatrix(s, blocksize=8)
    assert back.layout == w.layout
    assert_bits_equal(back.data, w.data)
    assert_bits_equal(back.get().data, w.get().data)


def test_scipy_explicit_zeros_keep_their_blocks():
    m = sp.csr_array((np.array([0.0, 1.0]), np.array([0, 5]), np.array([0, 1, 2, 2, 2])),
                     shape=(4, 6))
    w = BlockSparseMatrix(m, blocksize=2)
    np.testing.assert_array_equal(np.asarray(w.layout), [[True, False, True], [False] * 3])
    assert w.tocsr().nnz == 8


def test_scipy_conversions():
    w, dense = matrix(4, 3, 0.6, bs=2, dtype=np.float32)
    csr, coo = w.tocsr(), w.tocoo()
    assert isinstance(csr, sp.csr_array) and isinstance(coo, sp.coo_array)
    assert csr.nnz == coo.nnz == w.nnz
    np.testing.assert_array_equal(csr.toarray(), dense)
    np.testing.assert_array_equal(coo.toarray(), dense)
    with pytest.raises(ValueError, match="format must be one of"):
        w.to_scipy("dia")


@pytest.mark.parametrize("dtype", [np.float16, BF16])
def test_half_types_cannot_go_to_scipy(dtype):
    w, _ = matrix(dtype=dtype)
    for convert in (w.get, w.tocsr, w.tocoo, lambda: w.to_scipy("csc")):
        with pytest.raises(TypeError, match=f"scipy.sparse does not support {np.dtype(dtype)}"):
            convert()


def test_scipy_input_needs_float_or_dtype():
    m = sp.csr_array(np.eye(4, dtype=np.int64))
    with pytest.raises(TypeError, match="arg.dtype must be one of .*pass dtype="):
        BlockSparseMatrix(m, blocksize=2)
    w = BlockSparseMatrix(m, blocksize=2, dtype=np.float32)
    np.testing.assert_array_equal(w.toarray(), np.eye(4))
    with pytest.raises(ValueError, match="blocksize is required"):
        BlockSparseMatrix(m)
    with pytest.raises(ValueError, match=r"not a multiple of blocksize 3"):
        BlockSparseMatrix(m, blocksize=3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(4, 8\) does not match"):
        BlockSparseMatrix(m, shape=(4, 8), blocksize=2, dtype=np.float32)
    with pytest.raises(TypeError, match="m must be a scipy.sparse"):
        BlockSparseMatrix.from_scipy(np.eye(4), 2)


# ---------------------------------------------------------------------------------------------
# transposed views


@pytest.mark.parametrize("bs", [1, 2, 16, 64])
@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_transpose_view_shares_memory_and_matches_scipy(nbr, nbc, density, bs):
    w = BlockSparseMatrix(make_dense(make_mask(nbr, nbc, density, seed=9), bs, seed=9),
                          blocksize=bs)
    data_before = w.data.copy()
    t = w.T
    assert t.shape == w.shape[::-1] and t.transposed and not w.transposed
    assert t._data is w._data and t._base_layout is w.layout
    assert t.T._data is w._data and not t.T.transposed
    assert t.layout is w.layout.T and t.T.layout is w.layout
    np.testing.assert_array_equal(t.toarray(), w.toarray().T)
    ref = w.get().T.tobsr(blocksize=(bs, bs))
    ref.sort_indices()
    np.testing.assert_array_equal(t.indptr, ref.indptr)
    np.testing.assert_array_equal(t.indices, ref.indices)
    np.testing.assert_array_equal(t.data, ref.data)
    assert t.data.flags.c_contiguous and not t.data.flags.writeable
    back = t.get()
    np.testing.assert_array_equal(back.toarray(), w.toarray().T)
    np.testing.assert_array_equal(w.data, data_before)
    assert t.transpose()._data is w._data
    assert t.transpose((1, 0))._data is w._data
    copied = t.transpose(copy=True)
    assert not copied.transposed and copied.layout is w.layout
    assert not np.shares_memory(copied._data, w._data)
    np.testing.assert_array_equal(copied.toarray(), w.toarray())


def test_scipy_canonical_format_api():
    w, dense = matrix()
    assert w.has_canonical_format and w.has_sorted_indices
    data, indices = w.data, w.indices
    assert w.sort_indices() is None and w.sum_duplicates() is None
    assert w.data is data and w.indices is indices
    with pytest.raises(ValueError, match=r"axes must be None or \(1, 0\)"):
        w.transpose((0, 1))
    with pytest.raises(ValueError, match="axes must be None or"):
        w.transpose(5)


def test_transpose_view_sees_writes_to_parent():
    w, _ = matrix(3, 3, 1.0, bs=2)
    t = w.T
    w.data[0, 0, 1] = 42.0
    assert t.toarray()[1, 0] == 42.0


# ---------------------------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_storage_dtypes_are_exact(dtype):
    mask = make_mask(4, 5, 0.5, seed=2)
    dense = make_dense(mask, 8, dtype, seed=2)
    w = BlockSparseMatrix(dense, blocksize=8)
    assert w.dtype == dtype and w.data.dtype == dtype
    assert_bits_equal(w.toarray(), dense)
    assert_bits_equal(w.T.toarray(), np.ascontiguousarray(dense.T))
    assert_bits_equal(w.T.data, np.ascontiguousarray(dense_blocks(dense, 8, w.layout)[
        w.layout.transpose_perm].transpose(0, 2, 1)))
    for other in ALL_DTYPES:
        cast = w.astype(other)
        assert cast.dtype == other and cast.layout is w.layout
        via = np.float32 if BF16 in (dtype, other) else other
        assert_bits_equal(cast.toarray(), dense.astype(via).astype(other))
    assert w.astype(dtype, copy=False) is w
    assert w.astype(dtype) is not w and not np.shares_memory(w.astype(dtype).data, w.data)


def test_numpy_matrix_input_is_a_dense_array():
    # scipy's .todense() returns numpy.matrix
    m = sp.random(16, 24, density=0.2, format="csr", random_state=0, dtype=np.float32)
    dense = m.todense()
    assert isinstance(dense, np.matrix)
    for w in (BlockSparseMatrix.from_dense(dense, 8), BlockSparseMatrix(dense, blocksize=8)):
        assert type(w.toarray()) is np.ndarray
        np.testing.assert_array_equal(w.toarray(), m.toarray())


def test_tuple_and_shape_argument_errors():
    data, row, col = np.array([1.0, 2.0]), np.array([0, 5]), np.array([1, 9])
    with pytest.raises(TypeError, match=r"arg: a 2-tuple is scipy's \(data, \(row, col\)\).*coo_array"):
        BlockSparseMatrix((data, (row, col)), shape=(16, 16), blocksize=8)
    with pytest.raises(TypeError, match="arg: a 2-tuple"):
        BlockSparseMatrix((data, np.array([0.0, 1.0])), blocksize=2)
    rows = tuple((float(i),) * 4 for i in range(4))          # a tuple of rows is a dense array
    np.testing.assert_array_equal(BlockSparseMatrix(rows, blocksize=2).toarray(), np.array(rows))
    with pytest.raises(TypeError, match="shape must be a"):
        BlockSparseMatrix(np.zeros((4, 4)), shape="ab", blocksize=2)
    w, dense = matrix()
    for arg in (dense, w, sp.csr_array(dense)):
        with pytest.raises(TypeError, match="shape must be a \\(rows, cols\\) tuple, got 32"):
            BlockSparseMatrix(arg, shape=32, blocksize=4)
        assert BlockSparseMatrix(arg, shape=[16, 24], blocksize=4).shape == (16, 24)


def test_random_on_an_empty_grid():
    for shape in ((0, 16), (16, 0), (0, 0)):
        w = cb.random(shape, 8, density=0.5, seed=0)
        assert w.shape == shape and w.nnzb == 0 and w.toarray().shape == shape
    with pytest.raises(ValueError, match="density"):
        cb.random((0, 16), 8, density=1.5)


def test_dtype_errors():
    with pytest.raises(TypeError, match="arg.dtype must be one of .*got int64.*pass dtype="):
        BlockSparseMatrix(np.eye(4, dtype=np.int64), blocksize=2)
    with pytest.raises(TypeError, match="dtype must be one of"):
        BlockSparseMatrix(np.eye(4), blocksize=2, dtype=np.int32)
    with pytest.raises(TypeError, match="arg has dtype complex128, which cannot be converted"):
        BlockSparseMatrix(np.eye(4, dtype=complex), blocksize=2, dtype=np.float32)
    with pytest.raises(TypeError, match="data.dtype must be one of"):
        BlockSparseMatrix((np.ones((1, 2, 2), np.int32), [0], [0, 1]), shape=(2, 2))
    w, _ = matrix()
    with pytest.raises(TypeError, match="dtype must be one of"):
        w.astype(np.int8)


# ---------------------------------------------------------------------------------------------
# properties


def test_properties():
    w, dense = matrix(4, 6, 0.5, bs=4)
    assert w.format == "bsr" and w.ndim == 2 and w.has_canonical_format
    assert w.device == "cpu" and w.blocksize == (4, 4)
    assert w.nnz == w.nnzb * 16 == np.count_nonzero(dense)
    assert w.density == pytest.approx(w.nnzb / 24) and w.density == w.T.density
    assert w.T.nnzb == w.nnzb and w.T.nnz == w.nnz and w.T.blocksize == (4, 4)
    assert repr(w) == (
        f"<BlockSparseMatrix shape=(16, 24) blocksize=(4, 4) nnzb={w.nnzb} "
        f"density={w.density:.3g} dtype=float32 device='cpu'>"
    )
    assert repr(w.T).endswith("transposed view>")
    assert w.to_cpu() is w


def test_copy_is_independent_and_shares_layout():
    w, dense = matrix()
    c = w.copy()
    assert c.layout is w.layout and not np.shares_memory(c.data, w.data)
    c.data[...] = 0
    np.testing.assert_array_equal(w.toarray(), dense)
    t = w.T.copy()
    assert t.transposed and not np.shares_memory(t._data, w._data)
    np.testing.assert_array_equal(t.toarray(), dense.T)


# ---------------------------------------------------------------------------------------------
# arithmetic


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("alpha", [2.0, -0.1, 3])
def test_scalar_arithmetic(dtype, alpha):
    w, dense = matrix(dtype=dtype, seed=3)
    before = dense.copy()
    compute = np.float64 if dtype == np.float64 else np.float32
    d = dense.astype(compute)
    a = compute(alpha)
    for result, expected in [
        (w * alpha, d * a),
        (alpha * w, d * a),
        (w / alpha, d / a),
        (-w, -d),
        (w.multiply(alpha), d * a),
        (np.float32(alpha) * w, d * compute(np.float32(alpha))),
    ]:
        assert isinstance(result, BlockSparseMatrix) and result.dtype == dtype
        assert result.layout is w.layout
        expected = expected.astype(dtype)
        assert_bits_equal(result.data, dense_blocks(expected, 4, w.layout))
        np.testing.assert_array_equal(result.toarray(), expected)  # -0.0 == 0.0 off the blocks
    assert_bits_equal(dense, before)
    assert_bits_equal(w.toarray(), before)
    tw = w.T * alpha
    assert tw.transposed and tw.layout is w.layout.T
    np.testing.assert_array_equal(tw.toarray(), (d * a).astype(dtype).T)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_matrix_arithmetic_same_layout(dtype):
    w, dense_w = matrix(dtype=dtype, seed=1)
    v = BlockSparseMatrix.from_dense(make_dense(np.asarray(w.layout), 4, dtype, seed=2), 4,
                                     mask=w.layout)
    dense_v = v.toarray()
    compute = np.float64 if dtype == np.float64 else np.float32
    a, b = dense_w.astype(compute), dense_v.astype(compute)
    for result, expected in [(w + v, a + b), (w - v, a - b), (w * v, a * b),
                             (w.multiply(v), a * b)]:
        assert result.dtype == dtype and result.layout is w.layout
        assert_bits_equal(result.toarray(), expected.astype(dtype))
    # An equal pattern that is another object works too.
    twin = BlockSparseMatrix(dense_v, blocksize=4)
    assert twin.layout is not w.layout and twin.layout == w.layout
    assert_bits_equal((w + twin).toarray(), (a + b).astype(dtype))
    # Both transposed: stays a view on the shared layout.
    tt = w.T + v.T
    assert tt.transposed and tt._base_layout is w.layout
    assert_bits_equal(tt.toarray(), np.ascontiguousarray((a + b).astype(dtype).T))


def test_transposed_plus_canonical_with_equal_layout():
    w, dense = matrix(4, 4, 0.5, bs=2, dtype=np.float64)
    u = BlockSparseMatrix(np.ascontiguousarray(dense.T) * 2, blocksize=2)
    assert u.layout == w.T.layout and u.layout is not w.T.layout
    s = w.T + u
    assert not s.transposed and s.layout is w.T.layout
    np.testing.assert_array_equal(s.toarray(), dense.T * 3)
    np.testing.assert_array_equal((u - w.T).toarray(), dense.T)


@pytest.mark.parametrize("a,b,expected", [
    (np.float16, np.float32, np.float32), (np.float16, BF16, np.float32),
    (BF16, np.float64, np.float64), (np.float32, np.float64, np.float64),
])
def test_matrix_arithmetic_promotes_dtypes(a, b, expected):
    w, dense = matrix(dtype=np.float32, seed=4)
    wa, wb = w.astype(a), w.astype(b)
    s = wa + wb
    assert s.dtype == expected and (wb + wa).dtype == expected
    np.testing.assert_array_equal(s.toarray(), wa.toarray().astype(expected)
                                  + wb.toarray().astype(expected))


def test_arithmetic_errors():
    w, dense = matrix(4, 6, 0.5, bs=4, seed=0)
    other = BlockSparseMatrix(make_dense(make_mask(4, 6, 0.5, seed=1), 4), blocksize=4)
    assert other.layout != w.layout
    for op in (lambda: w + other, lambda: w - other, lambda: w * other, lambda: w.multiply(other)):
        with pytest.raises(ValueError, match="same block layout"):
            op()
    with pytest.raises(ValueError, match="shapes/blocksizes differ"):
        w + w.T
    with pytest.raises(ValueError, match="shapes/blocksizes differ"):
        w + BlockSparseMatrix(dense, blocksize=2)
    for op in (lambda: w + 1, lambda: w - 1.0, lambda: 1 + w, lambda: 2 / w, lambda: w / w,
               lambda: w * dense, lambda: dense * w, lambda: w + dense, lambda: w * 1j):
        with pytest.raises(TypeError):
            op()
    with pytest.raises(TypeError, match="other must be a real scalar or a BlockSparseMatrix"):
        w.multiply(dense)


def test_matmul_dispatches_to_ops(monkeypatch):
    from cupy_bsparse import ops

    calls = []
    monkeypatch.setattr(ops, "matmul", lambda a, b: calls.append((a, b)) or "result")
    w, _ = matrix()
    x = np.ones((3, w.shape[0]), np.float32)
    y = np.ones((w.shape[1], 2), np.float32)
    assert x @ w == "result" and calls[-1][0] is x and calls[-1][1] is w
    assert w @ y == "result" and calls[-1][0] is w and calls[-1][1] is y
    assert w.T @ x.T == "result" and calls[-1][0].transposed


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("ord", ["fro", 1, -1, np.inf, -np.inf])
def test_block_norms(dtype, ord):
    w, dense = matrix(5, 4, 0.5, bs=4, dtype=dtype, seed=6)
    compute = np.float64 if dtype == np.float64 else np.float32
    blocks = dense_blocks(dense, 4, w.layout).astype(compute)
    norms = w.block_norms(ord)
    assert norms.shape == (w.nnzb,) and norms.dtype == compute
    np.testing.assert_allclose(norms, np.linalg.norm(blocks, ord=ord, axis=(1, 2)), rtol=1e-6)
    t_blocks = blocks[w.layout.transpose_perm].transpose(0, 2, 1)
    np.testing.assert_allclose(w.T.block_norms(ord),
                               np.linalg.norm(t_blocks, ord=ord, axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("ord", [2, "nuc", "max", True, None])
def test_block_norms_rejects_ord(ord):
    w, _ = matrix()
    with pytest.raises(ValueError, match="ord must be one of"):
        w.block_norms(ord)


# ---------------------------------------------------------------------------------------------
# constructor errors


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: BlockSparseMatrix(np.ones((4, 6)), blocksize=4), ValueError,
         r"shape of the dense array \(4, 6\) is not a multiple of blocksize 4"),
        (lambda: BlockSparseMatrix(np.ones((4, 4))), ValueError, "blocksize is required"),
        (lambda: BlockSparseMatrix(np.ones((4, 4)), blocksize=0), ValueError,
         "blocksize must be positive"),
        (lambda: BlockSparseMatrix(np.ones((4, 4)), blocksize=-2), ValueError,
         "blocksize must be positive"),
        (lambda: BlockSparseMatrix(np.ones((4, 4)), blocksize=2.0), TypeError,
         "blocksize must be an int"),
        (lambda: BlockSparseMatrix(np.ones((4, 4)), blocksize=(2, 4)), ValueError,
         "blocksize must be square"),
        (lambda: BlockSparseMatrix(np.ones((4, 4, 4)), blocksize=2), ValueError,
         "must be a 2-D array"),
        (lambda: BlockSparseMatrix(np.ones(4), blocksize=2), ValueError, "must be a 2-D array"),
        (lambda: BlockSparseMatrix(np.ones((4, 4)), shape=(4, 8), blocksize=2), ValueError,
         r"shape \(4, 8\) does not match"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 1])), ValueError,
         "shape is required"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 1]), shape=(2, 3)), ValueError,
         "not a multiple of blocksize 2"),
        (lambda: BlockSparseMatrix((np.ones((2, 2)), [0], [0, 1]), shape=(2, 2)), ValueError,
         r"data must have shape \(nnzb, bs, bs\)"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 3)), [0], [0, 1]), shape=(2, 3)), ValueError,
         r"data must have shape \(nnzb, bs, bs\)"),
        (lambda: BlockSparseMatrix((np.ones((2, 2, 2)), [0], [0, 1]), shape=(2, 2)), ValueError,
         "data holds 2 blocks but indices has 1"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 1]), shape=(2, 2), blocksize=4),
         ValueError, "blocksize 4 does not match"),
        (lambda: BlockSparseMatrix((np.ones((0, 0, 0)), [], [0]), shape=(0, 0)), ValueError,
         r"data.shape\[1\] must be positive"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [2], [0, 1]), shape=(2, 4)), ValueError,
         r"indices must lie in \[0, n_block_cols = 2\)"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [-1], [0, 1]), shape=(2, 4)), ValueError,
         r"indices must lie in"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 2]), shape=(2, 4)), ValueError,
         r"indptr\[-1\] must equal len\(indices\)"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 2, 1]), shape=(4, 4)),
         ValueError, "indptr must be non-decreasing"),
        (lambda: BlockSparseMatrix((np.ones((1, 2, 2)), [0], [0, 1]), shape=(4, 4)), ValueError,
         r"indptr must have n_block_rows \+ 1 = 3"),
        (lambda: BlockSparseMatrix(BlockLayout([0, 0], [], (2, 2), 2)), TypeError,
         "use BlockSparseMatrix.from_layout"),
        (lambda: BlockSparseMatrix(matrix()[0], blocksize=2), ValueError,
         "re-blocking is not supported"),
        (lambda: BlockSparseMatrix(matrix()[0], shape=(4, 4)), ValueError, "does not match"),
        (lambda: BlockSparseMatrix.from_dense(np.ones((4, 4)), 2, mask=np.ones((3, 2), bool)),
         ValueError, r"mask has shape \(3, 2\), expected the block grid \(2, 2\)"),
        (lambda: BlockSparseMatrix.from_dense(np.ones((4, 4)), 2, mask=[[1, np.nan], [0, 0]]),
         ValueError, "mask contains NaN"),
        (lambda: BlockSparseMatrix.from_dense(np.ones((4, 4)), 2,
                                              mask=BlockLayout.from_mask(np.eye(2), 1)),
         ValueError, "mask is a layout of shape"),
        (lambda: BlockSparseMatrix.from_dense(np.ones(4), 2), ValueError, "a must be a 2-D array"),
        (lambda: BlockSparseMatrix.from_layout(np.eye(2, dtype=bool), np.ones((2, 2, 2))),
         TypeError, "layout must be a BlockLayout"),
        (lambda: BlockSparseMatrix.from_layout(BlockLayout.from_mask(np.eye(2), 2),
                                               np.ones((3, 2, 2))),
         ValueError, r"data must have shape \(nnzb, bs, bs\) = \(2, 2, 2\), got \(3, 2, 2\)"),
        (lambda: BlockSparseMatrix.from_layout(BlockLayout.from_mask(np.eye(2), 2),
                                               np.ones((2, 2, 2), np.int8)),
         TypeError, "data.dtype must be one of"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_inputs_never_modified_by_failed_or_successful_construction():
    data = np.ones((2, 2, 2), np.float32)
    indices = np.array([1, 0], np.int64)
    indptr = np.array([0, 2, 2], np.int64)
    with pytest.raises(ValueError, match="strictly increasing"):
        BlockSparseMatrix((data, indices, indptr), shape=(4, 4))
    np.testing.assert_array_equal(indices, [1, 0])
    indices = np.array([0, 1], np.int64)
    w = BlockSparseMatrix((data, indices, indptr), shape=(4, 4))
    # The matrix holds the caller's array itself, so nothing below may write to it.
    assert w.data is data
    x = np.ones((3, 4), np.float32)
    for use in (lambda: (w * 2 + w - w / 3).toarray(), lambda: w.T.data, lambda: w.block_norms(),
                lambda: w.astype(BF16), lambda: w.get(), lambda: x @ w, lambda: w.T @ x.T,
                lambda: cb.sddmm(x.T, x, w), lambda: BlockSparseMatrix(w, dtype=np.float16)):
        use()
    np.testing.assert_array_equal(data, np.ones((2, 2, 2)))
    np.testing.assert_array_equal(indices, [0, 1])
    np.testing.assert_array_equal(indptr, [0, 2, 2])


# ---------------------------------------------------------------------------------------------
# GPU


def to_cpu_array(a):
    from cupy_bsparse._arrays import to_host

    return to_host(a)


def _gpu_matrix(dtype=np.float32):
    mask = make_mask(5, 6, 0.5, seed=12)
    return BlockSparseMatrix(make_dense(mask, 8, dtype, seed=12), blocksize=8)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_to_gpu_to_cpu_is_exact(requires_gpu, dtype):
    cupy = requires_gpu
    w = _gpu_matrix(dtype)
    g = w.to_gpu()
    assert g.device == "gpu" and isinstance(g.data, cupy.ndarray) and g.dtype == dtype
    assert g.layout.device == "gpu" and g.layout == w.layout
    assert w.to_gpu().layout is g.layout  # the layout's GPU twin is cached
    assert g.to_gpu() is g
    back = g.to_cpu()
    assert back.layout is w.layout
    assert_bits_equal(back.data, w.data)
    assert_bits_equal(g.toarray().view(f"u{g.dtype.itemsize}").get(),
                      w.toarray().view(f"u{w.dtype.itemsize}"))
    assert_bits_equal(g.T.to_cpu().data, w.T.data)
    assert g.T._data is g._data
    assert_bits_equal(to_cpu_array(g.T.data), w.T.data)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gpu_arithmetic_matches_cpu_bitwise(requires_gpu, dtype):
    w = _gpu_matrix(dtype)
    g = w.to_gpu()
    for cpu, gpu in [(w * 0.3, g * 0.3), (-w, -g), (w / 3, g / 3), (w + w * 2, g + g * 2),
                     (w.T - w.T, g.T - g.T), (w.astype(BF16), g.astype(BF16))]:
        assert gpu.device == "gpu"
        assert_bits_equal(gpu.to_cpu().data, cpu.data)
    np.testing.assert_allclose(to_cpu_array(g.block_norms()), w.block_norms(), rtol=1e-6)


@pytest.mark.gpu
def test_gpu_from_dense_and_mixed_device_errors(requires_gpu):
    cupy = requires_gpu
    w = _gpu_matrix(np.float32)
    dense = w.toarray()
    g = BlockSparseMatrix(cupy.asarray(dense), blocksize=8)
    assert g.device == "gpu" and g.layout == w.layout
    assert_bits_equal(g.data.get(), w.data)
    from cupy_bsparse._arrays import to_module

    bf = BlockSparseMatrix(to_module(dense.astype(BF16), cupy), blocksize=8)
    assert bf.dtype == BF16 and bf.layout == w.layout
    assert_bits_equal(to_cpu_array(bf.data), w.astype(BF16).data)
    listed = BlockSparseMatrix.from_dense(cupy.asarray(dense), 8,
                                          mask=np.asarray(w.layout).tolist())
    assert listed.device == "gpu" and listed.layout.device == "gpu" and listed.layout == w.layout
    with pytest.raises(TypeError, match="on the GPU .* on the CPU"):
        BlockSparseMatrix((cupy.asarray(w.data), np.asarray(w.indices), w.indptr), shape=w.shape)
    with pytest.raises(TypeError, match="on the GPU .* on the CPU"):
        w + g
    with pytest.raises(TypeError, match="on the GPU .* on the CPU"):
        BlockSparseMatrix.from_layout(w.layout, cupy.asarray(w.data))
    with pytest.raises(TypeError, match="on the GPU .* on the CPU"):
        BlockSparseMatrix.from_dense(cupy.asarray(dense), 8, mask=np.asarray(w.layout))


@pytest.mark.gpu
def test_cupyx_csr_round_trip(requires_gpu):
    cupy = requires_gpu
    import cupyx.scipy.sparse as csp

    w = _gpu_matrix(np.float64)
    g = w.to_gpu()
    csr = g.tocsr()
    assert isinstance(csr, csp.csr_matrix) and csr.nnz == w.nnz
    np.testing.assert_array_equal(csr.get().toarray(), w.toarray())
    coo = g.tocoo()
    assert isinstance(coo, csp.coo_matrix)
    np.testing.assert_array_equal(coo.get().toarray(), w.toarray())
    before = (csr.data.copy(), csr.indices.copy(), csr.indptr.copy())
    back = BlockSparseMatrix(csr, blocksize=8)
    assert back.device == "gpu" and back.layout == w.layout
    assert_bits_equal(back.data.get(), w.data)
    for a, b in zip(before, (csr.data, csr.indices, csr.indptr)):
        cupy.testing.assert_array_equal(a, b)
    scipy_back = BlockSparseMatrix(w.get(), blocksize=8).to_gpu().get()
    assert_bits_equal(scipy_back.data, w.get().data)
    np.testing.assert_array_equal(scipy_back.indices, w.indices)
    with pytest.raises(TypeError, match="cupyx.scipy.sparse does not support bfloat16"):
        g.astype(BF16).tocsr()


@pytest.mark.gpu
def test_from_cupyx_coo_sums_duplicates_and_leaves_input_untouched(requires_gpu):
    cupy = requires_gpu
    import cupyx.scipy.sparse as csp

    row, col = cupy.asarray([9, 0, 0]), cupy.asarray([17, 1, 1])  # unsorted, one duplicate
    coo = csp.coo_matrix((cupy.asarray([4.0, 1.0, 2.0]), (row, col)), shape=(16, 24))
    before = [a.copy() for a in (coo.data, coo.row, coo.col)]
    w = BlockSparseMatrix(coo, blocksize=8)
    for a, b in zip(before, (coo.data, coo.row, coo.col)):
        cupy.testing.assert_array_equal(a, b)
    assert w.device == "gpu" and w.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(w.layout), [[True, False, False],
                                                          [False, False, True]])
    expected = np.zeros((16, 24))
    expected[0, 1], expected[9, 17] = 3.0, 4.0
    np.testing.assert_array_equal(w.toarray().get(), expected)


@pytest.mark.gpu
def test_random_on_gpu_equals_cpu(requires_gpu):
    w = cb.random((64, 128), 16, 0.5, seed=3, dtype=BF16)
    g = cb.random((64, 128), 16, 0.5, seed=3, dtype=BF16, device="gpu")
    assert g.device == "gpu" and g.layout == w.layout
    assert_bits_equal(g.to_cpu().data, w.data)
    shared = cb.random((64, 128), 16, layout=g.layout, device="gpu")
    assert shared.layout is g.layout


def test_pickle_and_copy():
    import copy
    import pickle

    w, dense = matrix(4, 6, 0.5, bs=4)
    for m in (w, w.T):
        back = pickle.loads(pickle.dumps(m))
        assert back.layout == m.layout and back.dtype == m.dtype and back.shape == m.shape
        np.testing.assert_array_equal(back.toarray(), m.toarray())
        x = np.random.default_rng(0).standard_normal((3, m.shape[0])).astype(np.float32)
        np.testing.assert_array_equal(x @ back, x @ m)
    layout = pickle.loads(pickle.dumps(w.layout))
    assert not layout.get("indices", np).flags.writeable      # read-only again
    deep = copy.deepcopy(w)
    assert deep.layout is w.layout and not np.shares_memory(deep.data, w.data)
    assert copy.copy(w.layout) is w.layout
