import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from cupy_bsparse import _arrays
from cupy_bsparse._arrays import (
    BFLOAT16,
    SUPPORTED_BLOCKSIZES,
    SUPPORTED_DTYPES,
    astype,
    check_blocksize,
    check_dtype,
    check_int,
    from_float32,
    get_array_module,
    is_cupy,
    to_float32,
    to_host,
    to_module,
)

ALL_DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]


def _special_float32():
    """float32 values that stress rounding: ties, subnormals, overflow, inf, NaN (both signs)."""
    rng = np.random.default_rng(0)
    random_bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
    # Exact ties between two bfloat16 values (low half 0x8000), with odd and even kept bit.
    ties = (np.arange(0, 2**16, 97, dtype=np.uint32) << 16) | 0x8000
    edges = np.array(
        [0, 0x80000000, 1, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF,
         0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0x3F808000,
         0x3F818000],
        dtype=np.uint32,
    )
    return np.concatenate([random_bits, ties, edges]).view(np.float32)


def test_package_import_does_not_import_cupy():
    code = "import sys, cupy_bsparse; assert 'cupy' not in sys.modules, 'cupy imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


_WITHOUT_CUPY = """
import sys
sys.modules["cupy"] = None  # `import cupy` now raises ImportError, as without CuPy installed
import numpy as np
import cupy_bsparse as cb
from cupy_bsparse import __main__ as cli

w = cb.random((64, 64), 16, 0.5, seed=0)
x = np.ones((3, 64), np.float32)
assert (x @ w).shape == (3, 64) and (w.T @ x.T).shape == (64, 3)
assert cb.sddmm(x.T, x, w).layout is w.layout
assert cli.main(["info"]) == 0
assert cli.main(["bench", "--quick", "--op", "fprop", "--blocksize", "16"]) == 0
"""


def test_cpu_path_works_without_cupy():
    result = subprocess.run([sys.executable, "-c", _WITHOUT_CUPY], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "cupy: not available (" in result.stdout
    assert "no CUDA GPU found: running the CPU reference" in result.stdout


def test_get_array_module_numpy_and_ignored_arguments():
    a = np.zeros(3)
    assert get_array_module(a) is np
    assert get_array_module() is np
    assert get_array_module(None, 1.5, [1, 2], x=a) is np
    assert not is_cupy(a) and not is_cupy([1]) and not is_cupy(None)


def test_all_cupy_rejects_numpy_and_other_objects():
    # the GPU fast path of matmul; a cupy array is only made on a GPU (test_gpu_kernels)
    assert _arrays.all_cupy(np.zeros(3)) is None
    assert _arrays.all_cupy(None, np.zeros(3)) is None
    assert _arrays.all_cupy([1.0]) is None


def test_supported_constants():
    assert SUPPORTED_DTYPES == tuple(np.dtype(d) for d in ALL_DTYPES)
    assert SUPPORTED_BLOCKSIZES == (8, 16, 32, 64)
    assert BFLOAT16 == np.dtype(ml_dtypes.bfloat16)


@pytest.mark.parametrize("dtype", ALL_DTYPES + ["float16", "bfloat16", "f4", "float64"])
def test_check_dtype_accepts(dtype):
    assert check_dtype(dtype) == np.dtype(dtype)
    assert isinstance(check_dtype(dtype), np.dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.complex64, "foo", object, np.float128, bool])
def test_check_dtype_rejects_with_name_and_list(dtype):
    with pytest.raises(TypeError, match=r"my_arg must be one of float16, bfloat16, float32, "):
        check_dtype(dtype, "my_arg")


@pytest.mark.parametrize("value", [0, 7, np.int64(7), np.uint8(7)])
def test_check_int_accepts(value):
    result = check_int(value, "n", 0)
    assert result == value and type(result) is int


@pytest.mark.parametrize(
    "value,error,match",
    [(True, TypeError, "n must be an int, got bool"), (np.bool_(1), TypeError, "got bool"),
     (2.0, TypeError, "n must be an int, got float"), ("2", TypeError, "got str"),
     (-1, ValueError, "n must be >= 0, got -1")],
)
def test_check_int_rejects(value, error, match):
    with pytest.raises(error, match=match):
        check_int(value, "n", 0)


@pytest.mark.parametrize("bs,expected", [(1, 1), (16, 16), (np.int64(8), 8), ((32, 32), 32),
                                         ([4, 4], 4)])
def test_check_blocksize_accepts(bs, expected):
    result = check_blocksize(bs)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    "bs,error,match",
    [
        (0, ValueError, "positive"),
        (-8, ValueError, "positive"),
        (8.0, TypeError, "must be an int"),
        (True, TypeError, "bool"),
        ("8", TypeError, "must be an int"),
        ((8, 16), ValueError, "square"),
        ((8, 8, 8), ValueError, "pair"),
        ((0, 0), ValueError, "positive"),
    ],
)
def test_check_blocksize_rejects(bs, error, match):
    with pytest.raises(error, match=f"bsize.*{match}"):
        check_blocksize(bs, "bsize")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_to_float32_numpy_is_exact(dtype):
    x = np.random.default_rng(1).standard_normal((5, 7)).astype(dtype)
    y = to_float32(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float64).astype(np.float32))
    assert to_float32(y) is y


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_from_float32_numpy_rounds_like_numpy(dtype):
    x = _special_float32()
    with np.errstate(over="ignore", invalid="ignore"):  # NaN/overflow casts are the point
        expected = x.astype(dtype)
        got = from_float32(x, dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}")[~np.isnan(x)],
                                  expected.view(f"u{got.itemsize}")[~np.isnan(x)])
    assert np.isnan(got.astype(np.float32)[np.isnan(x)]).all()


def test_bf16_bit_rounding_matches_ml_dtypes():
    # The cupy bfloat16 path is plain integer arithmetic; run it on numpy against ml_dtypes.
    x = _special_float32()
    got = _arrays._f32_to_bf16_bits(x, np)
    with np.errstate(invalid="ignore"):
        expected = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    finite_or_inf = ~np.isnan(x)
    np.testing.assert_array_equal(got[finite_or_inf], expected[finite_or_inf])
    assert np.isnan(got.view(ml_dtypes.bfloat16).astype(np.float32)[~finite_or_inf]).all()
    # NaN sign is kept too.
    assert ((got[~finite_or_inf] >> 15) == (x.view(np.uint32)[~finite_or_inf] >> 31)).all()


def test_bf16_bits_to_f32_is_exact_for_all_patterns():
    patterns = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    got = _arrays._bf16_bits_to_f32(patterns)
    expected = patterns.view(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_from_float32_rejects_bad_dtype():
    with pytest.raises(TypeError, match="dtype must be one of"):
        from_float32(np.zeros(2, np.float32), np.int8)


@pytest.mark.parametrize("src", ALL_DTYPES)
@pytest.mark.parametrize("dst", ALL_DTYPES)
def test_astype_numpy(src, dst):
    x = np.random.default_rng(2).standard_normal(64).astype(src)
    y = astype(x, dst)
    assert y.dtype == np.dtype(dst)
    expected = x.astype(dst)    # one rounding (ml_dtypes for bfloat16)
    np.testing.assert_array_equal(y.astype(np.float64), expected.astype(np.float64))
    assert not np.shares_memory(x, y)
    if src == dst:
        assert astype(x, dst, copy=False) is x


def _bf16_near_ties():
    """float64 values at, just above and just below the midpoints of neighbouring bfloat16
    values (a float32 in between rounds those just off a midpoint onto it, then to even: twice),
    both signs, over the normal range; and a few edge values."""
    rng = np.random.default_rng(3)
    bits = rng.integers(0x0080, 0x7F7F, 4000).astype(np.uint16)        # positive, normal
    lo = bits.view(BFLOAT16).astype(np.float64)
    hi = (bits + 1).view(BFLOAT16).astype(np.float64)
    mid = (lo + hi) / 2                                                 # exact in float64
    tiny = (hi - lo) * 2.0**-20       # below float32's resolution there, above float64's
    x = np.concatenate([mid, mid + tiny, mid - tiny])
    x = np.concatenate([x, -x])
    return np.concatenate([x, [1 + 2**-8 + 2**-30, 1e39, -1e39, 1e-46, 2.0**-134 * 1.5]])


def test_astype_to_bfloat16_rounds_once():
    x = _bf16_near_ties()
    with np.errstate(over="ignore"):
        got = astype(x, BFLOAT16).view(np.uint16)
        np.testing.assert_array_equal(got, x.astype(BFLOAT16).view(np.uint16))
    assert astype(np.float64(1 + 2**-8 + 2**-30), BFLOAT16) == BFLOAT16.type(1.0078125)
    n = np.array([2**24 + 2**16 + 1, 16777217 * 3, -(2**30) - 2**22 - 1, 2**31 - 1])
    for dt in (np.int32, np.int64):
        np.testing.assert_array_equal(astype(n.astype(dt), BFLOAT16).view(np.uint16),
                                      n.astype(np.float64).astype(BFLOAT16).view(np.uint16))


def test_check_dtype_names_byte_order():
    with pytest.raises(TypeError, match=r"in native byte order, got >f4 .*astype\('float32'\)"):
        check_dtype(np.dtype(">f4"), "a.dtype")
    assert check_dtype(np.dtype("=f4")) == np.float32


def test_to_module_and_to_host_on_numpy_return_same_object():
    x = np.arange(4.0)
    assert to_module(x, np) is x
    assert to_host(x) is x


@pytest.mark.gpu
def test_get_array_module_cupy_and_mixing(requires_gpu):
    cupy = requires_gpu
    c, n = cupy.zeros(3), np.zeros(3)
    assert get_array_module(c) is cupy and get_array_module(c, 2.0, None) is cupy
    assert is_cupy(c)
    with pytest.raises(TypeError, match=r"x on the GPU.*w on the CPU"):
        get_array_module(x=c, w=n)
    with pytest.raises(TypeError, match=r"argument 1 on the GPU.*argument 0 on the CPU"):
        get_array_module(n, c)


@pytest.mark.gpu
def test_astype_to_bfloat16_on_cupy_matches_numpy(requires_gpu):
    cupy = requires_gpu
    x = _bf16_near_ties()
    with np.errstate(over="ignore"):
        expected = astype(x, BFLOAT16).view(np.uint16)
    got = astype(cupy.asarray(x), BFLOAT16)
    assert is_cupy(got) and got.dtype == BFLOAT16
    # CuPy flushes float32 subnormals to zero in some casts; compare the normal range
    keep = np.abs(x) > 2.0**-126
    np.testing.assert_array_equal(to_host(got).view(np.uint16)[keep], expected[keep])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_float32_round_trip_on_cupy_matches_numpy(requires_gpu, dtype):
    cupy = requires_gpu
    x = _special_float32()
    with np.errstate(over="ignore", invalid="ignore"):
        expected = from_float32(x, dtype)
    got = from_float32(cupy.asarray(x), dtype)
    assert is_cupy(got) and got.dtype == np.dtype(dtype)
    host = to_host(got)
    bits = f"u{host.itemsize}"
    # CuPy's float32 -> float64 cast flushes float32 subnormals to zero (seen on an H100,
    # CuPy 14.2); numpy keeps them. Compare everything else bit for bit.
    keep = ~np.isnan(x)
    if np.dtype(dtype) == np.float64:
        keep &= ~((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny))
    np.testing.assert_array_equal(host.view(bits)[keep], expected.view(bits)[keep])
    back = to_host(to_float32(got))
    np.testing.assert_array_equal(back[keep], to_float32(expected)[keep])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_to_module_round_trip_and_astype_on_cupy(requires_gpu, dtype):
    cupy = requires_gpu
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(dtype)
    c = to_module(x, cupy)
    assert is_cupy(c) and c.dtype == x.dtype
    assert to_module(c, cupy) is c
    np.testing.assert_array_equal(to_host(c).view(f"u{x.itemsize}"), x.view(f"u{x.itemsize}"))
    for dst in ALL_DTYPES:
        np.testing.assert_array_equal(
            to_host(astype(c, dst)).astype(np.float64), astype(x, dst).astype(np.float64)
        )
