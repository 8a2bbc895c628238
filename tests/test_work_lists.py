"""The GPU kernels' work lists, built with numpy: every entry covered once, slots consistent."""
import numpy as np
import pytest

from cupy_bsparse import _gpu_ops


def _ptr(counts):
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@pytest.mark.parametrize("chunk", [1, 2, 3, 8, 1000])
@pytest.mark.parametrize("counts", [[0], [5], [0, 7, 0, 1, 16, 3], [40, 1, 1, 0, 9]])
def test_chunk_table_covers_each_column_once(counts, chunk):
    ptr = _ptr(counts)
    table, colinfo, nslots = _gpu_ops.chunk_table(ptr, chunk, np)
    assert table.dtype == np.int32 and colinfo.dtype == np.int32
    assert colinfo.shape == (len(counts), 2)
    slots = []
    for j, n in enumerate(counts):
        rows = table[table[:, 0] == j]
        nch = max(1, -(-n // chunk))
        assert len(rows) == nch == colinfo[j, 1]
        # contiguous, in order, covering ptr[j]..ptr[j+1], each at most `chunk` long
        assert rows[0, 1] == ptr[j] and rows[-1, 2] == ptr[j + 1]
        assert np.all(rows[1:, 1] == rows[:-1, 2])
        assert np.all(rows[:, 2] - rows[:, 1] <= chunk)
        if nch == 1:
            assert rows[0, 3] == -1
        else:
            assert list(rows[:, 3]) == list(range(colinfo[j, 0], colinfo[j, 0] + nch))
            slots += list(rows[:, 3])
    assert sorted(slots) == list(range(nslots))
    # chunks of one column are adjacent in the grid
    assert np.all(np.diff(table[:, 0]) >= 0)


def test_chunk_table_no_columns():
    table, colinfo, nslots = _gpu_ops.chunk_table(np.zeros(1, np.int64), 4, np)
    assert table.shape == (0, 4) and colinfo.shape == (0, 2) and nslots == 0
