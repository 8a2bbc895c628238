"""Tensor maps (``_tensor_maps``): what the TMA cannot copy is refused before the driver is
asked, so these run without a GPU."""
import pytest


def test_tensor_map_rejects_what_the_tma_cannot_copy():
    from cupy_bsparse import _tensor_maps

    ok = dict(ptr=256, rows=64, cols=1024, row_bytes=2048, itemsize=2, box_rows=64, box_cols=64)
    for bad in (dict(ptr=8), dict(row_bytes=2050), dict(box_cols=24), dict(box_rows=300),
                dict(rows=0), dict(itemsize=8)):
        with pytest.raises(ValueError, match="no tensor map"):
            _tensor_maps.tile_map(**{**ok, **bad})
