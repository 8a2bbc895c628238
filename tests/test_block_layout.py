import time

import numpy as np
import pytest
import scipy.sparse as sp

import cupy_bsparse as cb
from cupy_bsparse import layouts
from cupy_bsparse.block_layout import BlockLayout

# (n_block_rows, n_block_cols, density); densities 0 and 1 and empty rows/columns included.
GRIDS = [(1, 1, 0.0), (1, 1, 1.0), (3, 5, 0.0), (3, 5, 0.2), (3, 5, 0.5), (3, 5, 1.0),
         (7, 4, 0.3), (6, 6, 0.5), (10, 3, 0.7), (4, 9, 1.0)]
BLOCKSIZES = [1, 2, 8, 16, 32, 64]


def make_mask(nbr, nbc, density, seed=0):
    """Random mask; with 0 < density < 1 it has an empty block-row and block-column."""
    mask = layouts.random(nbr, nbc, density, seed=seed)
    if 0 < density < 1 and nbr > 2 and nbc > 2:
        mask[1, :] = False
        mask[:, 2] = False
    return mask


def csr_of(mask):
    ref = sp.csr_array(mask.astype(np.int8))
    ref.sort_indices()
    return ref


@pytest.mark.parametrize("bs", BLOCKSIZES)
@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_from_mask_matches_scipy_csr(nbr, nbc, density, bs):
    mask = make_mask(nbr, nbc, density)
    before = mask.copy()
    layout = BlockLayout.from_mask(mask, bs)
    ref = csr_of(mask)
    np.testing.assert_array_equal(mask, before)
    assert layout.shape == (nbr * bs, nbc * bs)
    assert layout.blocksize == bs and type(layout.blocksize) is int
    assert layout.block_shape == (nbr, nbc)
    assert layout.nnzb == mask.sum() == ref.nnz
    assert layout.density == pytest.approx(mask.sum() / (nbr * nbc))
    assert layout.indptr.dtype == np.int32 and layout.indices.dtype == np.int32
    np.testing.assert_array_equal(layout.indptr, ref.indptr)
    np.testing.assert_array_equal(layout.indices, ref.indices)
    np.testing.assert_array_equal(layout.row_ids, np.nonzero(mask)[0])
    np.testing.assert_array_equal(layout.mask, mask)
    np.testing.assert_array_equal(layout.toarray(), mask)
    np.testing.assert_array_equal(np.asarray(layout), mask)
    assert layout.device == "cpu"


@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_constructor_matches_from_mask(nbr, nbc, density):
    mask = make_mask(nbr, nbc, density, seed=3)
    ref = csr_of(mask)
    layout = BlockLayout(ref.indptr.astype(np.int64), ref.indices.astype(np.int64),
                         (nbr * 4, nbc * 4), 4)
    assert layout == BlockLayout.from_mask(mask, 4)
    np.testing.assert_array_equal(layout.mask, mask)
    assert layout.indptr.dtype == np.int32 and layout.indices.dtype == np.int32


@pytest.mark.parametrize("bs", [1, 8, 64])
@pytest.mark.parametrize("nbr,nbc,density", GRIDS)
def test_transpose_matches_scipy(nbr, nbc, density, bs):
    mask = make_mask(nbr, nbc, density, seed=5)
    layout = BlockLayout.from_mask(mask, bs)
    t = layout.T
    ref = csr_of(mask.T)
    assert t.shape == (nbc * bs, nbr * bs) and t.blocksize == bs and t.nnzb == layout.nnzb
    np.testing.assert_array_equal(t.indptr, ref.indptr)
    np.testing.assert_array_equal(t.indices, ref.indices)
    np.testing.assert_array_equal(t.mask, mask.T)
    np.testing.assert_array_equal(t.row_ids, np.nonzero(mask.T)[0])
    assert layout.T is t and t.T is layout
    perm = layout.transpose_perm
    assert perm.dtype == np.int32 and perm.shape == (layout.nnzb,)
    # Block k of the transpose is block perm[k] of the original, at swapped coordinates.
    np.testing.assert_array_equal(t.indices, layout.row_ids[perm])
    np.testing.assert_array_equal(t.row_ids, layout.indices[perm])
    np.testing.assert_array_equal(perm[t.transpose_perm], np.arange(layout.nnzb))
    np.testing.assert_array_equal(t.transpose_perm[perm], np.arange(layout.nnzb))


def test_transpose_perm_is_computed_with_the_transpose(monkeypatch):
    layout = BlockLayout.from_mask(make_mask(5, 6, 0.5), 2)
    calls = []
    transpose = BlockLayout._transpose
    monkeypatch.setattr(BlockLayout, "_transpose", lambda self: calls.append(self) or transpose(self))
    perm = layout.transpose_perm
    t = layout.T
    assert layout.transpose_perm is perm and t.T is layout
    np.testing.assert_array_equal(perm[t.transpose_perm], np.arange(layout.nnzb))
    # One transposition serves T, transpose_perm and the transpose's own perm.
    assert calls == [layout]


def test_transpose_of_100k_blocks_is_fast():
    mask = np.random.default_rng(0).random((400, 1000)) < 0.25
    layout = BlockLayout.from_mask(mask, 8)
    assert layout.nnzb > 99_000
    start = time.perf_counter()
    t = layout.T
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(t.mask, mask.T)
    assert elapsed < 0.5, f"transposing {layout.nnzb} blocks took {elapsed:.3f} s"


def test_empty_grids_and_empty_layouts():
    empty_grid = BlockLayout([0], [], (0, 16), 8)
    assert empty_grid.block_shape == (0, 2) and empty_grid.nnzb == 0
    assert empty_grid.density == 0.0
    assert empty_grid.T.shape == (16, 0)
    np.testing.assert_array_equal(empty_grid.T.indptr, [0, 0, 0])
    no_blocks = BlockLayout.from_mask(np.zeros((3, 4), bool), 2)
    assert no_blocks.nnzb == 0 and no_blocks.density == 0.0
    np.testing.assert_array_equal(no_blocks.indptr, np.zeros(4))
    assert no_blocks.T.nnzb == 0 and no_blocks.transpose_perm.shape == (0,)


def test_arrays_are_int32_copies_and_read_only():
    indptr = np.array([0, 2, 3], dtype=np.int64)
    indices = np.array([0, 2, 1], dtype=np.int64)
    layout = BlockLayout(indptr, indices, (4, 6), 2)
    indices[0] = 1
    indptr[1] = 1
    np.testing.assert_array_equal(layout.indices, [0, 2, 1])
    np.testing.assert_array_equal(layout.indptr, [0, 2, 3])
    for name in ("indptr", "indices", "row_ids", "transpose_perm"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(layout, name)[0] = 0
    same_dtype = np.array([0, 1], dtype=np.int32)
    assert not np.shares_memory(BlockLayout(same_dtype, [1], (2, 4), 2).indptr, same_dtype)


def test_accepts_lists_unsigned_and_pair_blocksize():
    layout = BlockLayout([0, 1, 1], np.array([3], dtype=np.uint16), (16, 32), (8, 8))
    assert layout.blocksize == 8 and layout.block_shape == (2, 4)
    np.testing.assert_array_equal(layout.mask, [[False, False, False, True], [False] * 4])


@pytest.mark.parametrize(
    "indptr,indices,shape,bs,error,match",
    [
        ([0, 1], [0], (4, 4), 2, ValueError, r"indptr must have n_block_rows \+ 1 = 3"),
        ([1, 1, 1], [], (4, 4), 2, ValueError, r"indptr\[0\] must be 0, got 1"),
        ([0, 1, 1], [0, 1], (4, 4), 2, ValueError, r"indptr\[-1\] must equal len\(indices\) = 2"),
        ([0, 2, 1, 2], [0, 1], (6, 4), 2, ValueError, "indptr must be non-decreasing"),
        ([0, 1, 2], [0, 2], (4, 4), 2, ValueError, r"indices must lie in \[0, n_block_cols = 2\)"),
        ([0, 1, 2], [-1, 0], (4, 4), 2, ValueError, r"indices must lie in .*got values in \[-1"),
        ([0, 2, 2], [1, 0], (4, 4), 2, ValueError, "strictly increasing"),
        ([0, 2, 2], [1, 1], (4, 4), 2, ValueError, "no duplicate"),
        ([0, 1, 1], [0.0], (4, 4), 2, TypeError, "indices must be an integer array"),
        (np.array([0.0, 1, 1]), [0], (4, 4), 2, TypeError, "indptr must be an integer array"),
        ([0, 1, 1], [True], (4, 4), 2, TypeError, "indices must be an integer array"),
        ([[0, 1, 1]], [0], (4, 4), 2, ValueError, "indptr must be 1-D"),
        ([0, 1, 1], [[0]], (4, 4), 2, ValueError, "indices must be 1-D"),
        ([0, 1, 1], [0], (4, 5), 2, ValueError, r"shape \(4, 5\) is not a multiple of blocksize 2"),
        ([0, 1, 1], [0], (4,), 2, ValueError, "shape must have 2 entries"),
        ([0, 1, 1], [0], (-4, 4), 2, ValueError, "shape must be non-negative"),
        ([0, 1, 1], [0], (4.0, 4), 2, TypeError, "shape must hold ints"),
        ([0, 1, 1], [0], (True, 4), 1, TypeError, "shape must hold ints"),
        ([0], [], (2**31, 1), 1, ValueError, r"more than 2\*\*31 - 1 block-rows"),
        ([0, 1, 1], [0], 4, 2, TypeError, "shape must be a"),
        ([0, 1, 1], [0], (4, 4), 0, ValueError, "blocksize must be positive"),
        ([0, 1, 1], [0], (4, 4), -2, ValueError, "blocksize must be positive"),
        ([0, 1, 1], [0], (4, 4), 2.0, TypeError, "blocksize must be an int"),
        ([0, 1, 1], [0], (4, 4), (2, 1), ValueError, "blocksize must be square"),
    ],
)
def test_constructor_errors(indptr, indices, shape, bs, error, match):
    with pytest.raises(error, match=match):
        BlockLayout(indptr, indices, shape, bs)


def test_more_than_int32_blocks_is_rejected():
    # A zero-stride view: 2**31 indices without the memory. indptr is also too long, so that
    # without the check the constructor fails fast on indptr instead of allocating.
    indices = np.broadcast_to(np.int32(0), (2**31,))
    with pytest.raises(ValueError, match=r"indices has 2147483648 blocks, more than 2\*\*31 - 1"):
        BlockLayout([0, 0, 0], indices, (1, 1), 1)


def test_constructor_does_not_modify_inputs():
    indptr = np.array([0, 2, 2], dtype=np.int64)
    indices = np.array([1, 0], dtype=np.int64)  # unsorted: rejected
    with pytest.raises(ValueError):
        BlockLayout(indptr, indices, (4, 4), 2)
    np.testing.assert_array_equal(indices, [1, 0])
    np.testing.assert_array_equal(indptr, [0, 2, 2])


@pytest.mark.parametrize("mask", [np.array([[1, 0], [0, 3]]), np.array([[0.5, 0.0], [0.0, -2.0]])])
def test_from_mask_numeric_masks_count_nonzero(mask):
    layout = BlockLayout.from_mask(mask, 4)
    np.testing.assert_array_equal(layout.mask, [[True, False], [False, True]])


def test_from_mask_accepts_lists():
    layout = BlockLayout.from_mask([[True, False, True]], 2)
    assert layout.shape == (2, 6)
    np.testing.assert_array_equal(layout.indices, [0, 2])


@pytest.mark.parametrize(
    "mask,error,match",
    [
        (np.array([[1.0, np.nan]]), ValueError, "mask contains NaN"),
        (np.array([True, False]), ValueError, "mask must be 2-D"),
        (np.ones((2, 2, 2), bool), ValueError, "mask must be 2-D"),
        (np.array([[1 + 1j]]), TypeError, "mask must be a bool or real numeric array"),
        (np.array([["a"]]), TypeError, "mask must be a bool or real numeric array"),
    ],
)
def test_from_mask_errors(mask, error, match):
    before = mask.copy()
    with pytest.raises(error, match=match):
        BlockLayout.from_mask(mask, 2)
    np.testing.assert_array_equal(mask, before)


def test_mask_that_is_not_an_array_errors():
    w = cb.random((32, 32), 8, density=0.5, seed=0)
    for call in (lambda: BlockLayout.from_mask(w, 8), lambda: layouts.density(w),
                 lambda: cb.BlockSparseMatrix.from_dense(np.ones((32, 32), np.float32), 8,
                                                         mask=w)):
        with pytest.raises(TypeError, match="mask must be a bool array .* got BlockSparseMatrix"):
            call()
    assert layouts.density(w.layout) == 0.5      # a BlockLayout is a mask


def test_from_mask_blocksize_errors():
    with pytest.raises(ValueError, match="blocksize must be positive"):
        BlockLayout.from_mask(np.ones((2, 2), bool), 0)
    with pytest.raises(TypeError, match="blocksize must be an int"):
        BlockLayout.from_mask(np.ones((2, 2), bool), True)


def test_equality_and_hash():
    mask = make_mask(6, 5, 0.5, seed=2)
    a = BlockLayout.from_mask(mask, 4)
    b = BlockLayout(a.indptr, a.indices, a.shape, 4)
    assert a is not b and a == b and hash(a) == hash(b)
    assert a != BlockLayout.from_mask(mask, 8)  # same pattern, other blocksize
    other = mask.copy()
    other[0, 0] = not other[0, 0]
    assert a != BlockLayout.from_mask(other, 4)
    moved = mask.copy()
    row = np.flatnonzero(mask.any(axis=1))[0]
    col = np.flatnonzero(mask[row])[0]
    free = np.flatnonzero(~mask[row])[0]
    moved[row, col], moved[row, free] = False, True  # same nnzb, other position
    assert a != BlockLayout.from_mask(moved, 4)
    wide = np.zeros((6, 6), bool)
    wide[:, :5] = mask
    assert a != BlockLayout.from_mask(wide, 4)  # other shape
    assert a != "not a layout"
    assert a.T != a  # a (5, 6) grid against a (6, 5) one


def test_get_returns_own_arrays_for_own_module_and_rejects_bad_names():
    layout = BlockLayout.from_mask(make_mask(4, 4, 0.5), 2)
    assert layout.get("indptr", np) is layout.indptr
    assert layout.get("indices", np) is layout.indices
    assert layout.get("row_ids", np) is layout.row_ids
    assert layout.get("transpose_perm", np) is layout.transpose_perm
    with pytest.raises(ValueError, match="name must be one of"):
        layout.get("data", np)
    with pytest.raises(TypeError, match="xp must be the numpy or cupy module"):
        layout.get("indptr", sp)


def test_plan_cache_is_a_per_layout_dict():
    a = BlockLayout.from_mask(np.eye(3, dtype=bool), 2)
    b = BlockLayout.from_mask(np.eye(3, dtype=bool), 2)
    a.plan_cache["lut"] = 1
    assert a.plan_cache == {"lut": 1} and b.plan_cache == {}
    assert a.T.plan_cache == {}
    assert a.to_cpu() is a


def test_repr():
    layout = BlockLayout.from_mask(np.eye(4, dtype=bool), 16)
    assert repr(layout) == (
        "BlockLayout(shape=(64, 64), blocksize=16, nnzb=4, density=0.25, device='cpu')"
    )


@pytest.mark.gpu
def test_cupy_layout_matches_numpy(requires_gpu):
    cupy = requires_gpu
    mask = make_mask(9, 7, 0.4, seed=11)
    cpu = BlockLayout.from_mask(mask, 8)
    gpu = BlockLayout.from_mask(cupy.asarray(mask), 8)
    assert gpu.device == "gpu"
    assert isinstance(gpu.indptr, cupy.ndarray) and gpu.indptr.dtype == np.int32
    assert gpu == cpu and cpu == gpu
    np.testing.assert_array_equal(gpu.indices.get(), cpu.indices)
    np.testing.assert_array_equal(gpu.row_ids.get(), cpu.row_ids)
    np.testing.assert_array_equal(gpu.T.indptr.get(), cpu.T.indptr)
    np.testing.assert_array_equal(gpu.T.indices.get(), cpu.T.indices)
    np.testing.assert_array_equal(gpu.transpose_perm.get(), cpu.transpose_perm)
    np.testing.assert_array_equal(gpu.mask.get(), mask)
    np.testing.assert_array_equal(np.asarray(gpu), mask)
    host = gpu.get("transpose_perm", np)
    assert isinstance(host, np.ndarray) and gpu.get("transpose_perm", np) is host
    np.testing.assert_array_equal(host, cpu.transpose_perm)


@pytest.mark.gpu
def test_cupy_constructor_validates(requires_gpu):
    cupy = requires_gpu
    ok = BlockLayout(cupy.array([0, 1, 2]), cupy.array([1, 0]), (4, 4), 2)
    np.testing.assert_array_equal(ok.mask.get(), [[False, True], [True, False]])
    with pytest.raises(ValueError, match="indptr must be non-decreasing"):
        BlockLayout(cupy.array([0, 2, 1, 2]), cupy.array([0, 1]), (6, 4), 2)
    with pytest.raises(ValueError, match="strictly increasing"):
        BlockLayout(cupy.array([0, 2, 2]), cupy.array([1, 0]), (4, 4), 2)
    with pytest.raises(ValueError, match=r"indices must lie in"):
        BlockLayout(cupy.array([0, 1, 1]), cupy.array([5]), (4, 4), 2)
    with pytest.raises(TypeError, match="indptr on the CPU|on the GPU"):
        BlockLayout(np.array([0, 1, 1]), cupy.array([0]), (4, 4), 2)
    with pytest.raises(ValueError, match="mask contains NaN"):
        BlockLayout.from_mask(cupy.array([[np.nan]]), 2)


@pytest.mark.gpu
def test_device_twins_are_cached(requires_gpu):
    cupy = requires_gpu
    cpu = BlockLayout.from_mask(make_mask(5, 5, 0.5), 16)
    gpu = cpu.to_gpu()
    assert gpu.device == "gpu" and gpu == cpu
    assert cpu.to_gpu() is gpu and gpu.to_cpu() is cpu and gpu.to_gpu() is gpu
    assert cpu.get("indices", cupy) is gpu.indices
