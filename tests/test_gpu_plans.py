"""Look-up tables of the GPU kernels, checked on the CPU by replaying the kernels' walks."""
import numpy as np
import pytest

import cupy_bsparse as cb
from cupy_bsparse import _gpu_ops, layouts


def _replay_grouped(x, data, layout, trans_w, S):
    """What dsd_grouped.cu computes, in numpy: walk each group's entries and their masks."""
    gptr, ent, blk = _gpu_ops.grouped_tables(layout, trans_w, S, np)
    bs = layout.blocksize
    n_out = layout.block_shape[0] if trans_w else layout.block_shape[1]
    y = np.zeros((x.shape[0], n_out * bs))
    seen = 0
    for g in range(len(gptr) - 1):
        cs = ent[gptr[g]:gptr[g + 1], 0]
        assert np.all(np.diff(cs) > 0), "entries of a group must be in increasing c"
        for c, mask, first, _ in ent[gptr[g]:gptr[g + 1]]:
            mask = int(np.uint32(np.int32(mask)))
            assert mask, "an entry without blocks"
            xt = x[:, c * bs:(c + 1) * bs]
            k = 0
            for s in range(S):
                if mask >> s & 1:
                    b = data[blk[first + k]]
                    j = g * S + s
                    y[:, j * bs:(j + 1) * bs] += xt @ (b.T if trans_w else b)
                    k += 1
            seen += k
    assert seen == layout.nnzb, "every block used exactly once"
    return y


@pytest.mark.parametrize("trans_w", [False, True])
@pytest.mark.parametrize("S", [1, 4, 16, 32])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_grouped_tables_replay_matches_dense(trans_w, S, density):
    rng = np.random.default_rng(int(density * 100) + S + 7 * trans_w)
    bs = 2
    mask = layouts.random(13, 37, density, seed=rng)   # group count not a multiple of S
    if 0 < density < 1:
        mask[3, :] = False
        mask[:, 5] = False
    w = cb.BlockSparseMatrix.from_dense(rng.standard_normal((26, 74)), bs, mask=mask)
    op = w.toarray().T if trans_w else w.toarray()
    x = rng.standard_normal((3, op.shape[0]))
    y = _replay_grouped(x, w.data, w.layout, trans_w, S)
    np.testing.assert_allclose(y, x @ op, atol=1e-12)


def test_grouped_tables_full_mask_bit31():
    """S = 32 with all columns present sets bit 31: the mask must survive as uint32 bits."""
    layout = cb.BlockLayout.from_mask(np.ones((2, 32), bool), 8)
    _, ent, _ = _gpu_ops.grouped_tables(layout, False, 32, np)
    assert np.all(ent[:, 1].view(np.uint32) == 0xFFFFFFFF)
