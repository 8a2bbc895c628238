"""Array-module helpers: numpy vs cupy, supported dtypes, float32 up/down conversion.

CuPy is never imported here at import time. An object can only be a ``cupy.ndarray`` if cupy
has already been imported by someone, so detection looks the module up in ``sys.modules``.

CuPy stores ``ml_dtypes.bfloat16`` arrays but has no kernels for them, so every bfloat16 data
movement goes through a ``uint16`` view (:func:`bits`) and arithmetic goes through float32
(:func:`to_float32` / :func:`from_float32`, implemented with integer bit manipulation on cupy).
"""

import operator
import sys

import ml_dtypes
import numpy as np

__all__ = [
    "BFLOAT16",
    "SUPPORTED_DTYPES",
    "SUPPORTED_BLOCKSIZES",
    "all_cupy",
    "get_array_module",
    "is_cupy",
    "check_dtype",
    "check_int",
    "check_blocksize",
    "to_float32",
    "from_float32",
    "astype",
    "bits",
    "from_bits",
    "to_module",
    "to_host",
]

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
SUPPORTED_DTYPES = (np.dtype(np.float16), BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))
# Block sizes the GPU kernels are specialised for; the numpy path takes any positive size.
SUPPORTED_BLOCKSIZES = (8, 16, 32, 64)


def _cupy():
    """The cupy module if it has been imported, else None (never imports it)."""
    return sys.modules.get("cupy")


def gpu_available():
    """True if CuPy imports and sees a CUDA device (imports CuPy; never raises)."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, no driver, driver too old, no device
        return False


def is_cupy(a):
    """True if ``a`` is a ``cupy.ndarray``."""
    cupy = _cupy()
    return cupy is not None and isinstance(a, cupy.ndarray)


def all_cupy(*arrays):
    """The cupy module if every argument other than None is exactly a ``cupy.ndarray``, else
    None: the fast test for the common GPU call (``get_array_module`` gives the errors)."""
    cupy = _cupy()
    if cupy is None:
        return None
    nd = cupy.ndarray
    for a in arrays:
        if a is not None and type(a) is not nd:
            return None
    return cupy


def get_array_module(*arrays, **named_arrays):
    """Return ``cupy`` if any argument is a ``cupy.ndarray``, else ``numpy``.

    Arguments that are neither numpy nor cupy arrays (scalars, None, lists) are ignored. Keyword
    arguments only give the arrays names for the error message.

    Raises: TypeError naming the arguments when numpy and cupy arrays are mixed.
    """
    cupy = _cupy()
    if cupy is None:
        return np
    gpu = cpu = False
    for a in arrays + tuple(named_arrays.values()):
        if isinstance(a, cupy.ndarray):
            gpu = True
        elif isinstance(a, np.ndarray):
            cpu = True
    if not gpu:
        return np
    if cpu:
        items = [(f"argument {i}", a) for i, a in enumerate(arrays)] + list(named_arrays.items())
        on_gpu = [name for name, a in items if isinstance(a, cupy.ndarray)]
        on_cpu = [name for name, a in items if isinstance(a, np.ndarray)]
        raise TypeError(
            f"{', '.join(on_gpu)} on the GPU (cupy) but {', '.join(on_cpu)} on the CPU "
            "(numpy): move them to one device first"
        )
    return cupy


def _dtype_names():
    return ", ".join(d.name for d in SUPPORTED_DTYPES)


def check_dtype(dtype, name="dtype"):
    """Return ``np.dtype(dtype)`` if it is a supported storage dtype.

    Raises: TypeError naming ``name`` and listing the supported dtypes.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{name} must be one of {_dtype_names()}, got {dtype!r}"
        ) from None
    if dt not in SUPPORTED_DTYPES:
        if dt.newbyteorder("=") in SUPPORTED_DTYPES:
            raise TypeError(
                f"{name} must be one of {_dtype_names()} in native byte order, got {dt.str} "
                f"(non-native): convert with .astype({dt.name!r})"
            )
        raise TypeError(f"{name} must be one of {_dtype_names()}, got {dt.name}")
    return dt


def check_int(value, name, minimum=None):
    """Return ``value`` (a Python or numpy integer, not a bool) as a Python int.

    Raises: TypeError naming ``name`` for anything else, ValueError if below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_blocksize(blocksize, name="blocksize"):
    """Return ``blocksize`` (an int or a square ``(bs, bs)`` pair) as a positive int.

    Raises: TypeError if not an int (or pair of ints), ValueError if <= 0 or not square.
    """
    if isinstance(blocksize, (tuple, list)):
        if len(blocksize) != 2:
            raise ValueError(f"{name} must be an int or a (bs, bs) pair, got {blocksize!r}")
        first, second = (check_blocksize(b, name) for b in blocksize)
        if first != second:
            raise ValueError(f"{name} must be square, got {tuple(blocksize)}")
        return first
    bs = check_int(blocksize, name)
    if bs <= 0:
        raise ValueError(f"{name} must be positive, got {bs}")
    return bs


def bits(a):
    """View of ``a`` that every array module can copy, index and transpose.

    bfloat16 arrays become ``uint16`` views (same memory); other arrays are returned as is.
    """
    return a.view(np.uint16) if a.dtype == BFLOAT16 else a


def from_bits(a, dtype):
    """Inverse of :func:`bits`: view ``uint16`` data as ``dtype`` if that is bfloat16."""
    return a.view(BFLOAT16) if dtype == BFLOAT16 else a


def _f32_to_bf16_bits(a, xp):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even, NaN kept quiet."""
    u = xp.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    lsb = (u >> 16) & 1
    rounded = ((u + (0x7FFF + lsb)) >> 16).astype(np.uint16)
    # Rounding could carry a NaN's payload into the exponent (-> inf); truncate and set the
    # quiet bit instead so NaN stays NaN.
    nan_bits = ((u >> 16) | 0x0040).astype(np.uint16)
    return xp.where(xp.isnan(a), nan_bits, rounded)


def _bf16_bits_to_f32(u):
    """uint16 bfloat16 bit patterns -> float32 (exact)."""
    return (u.astype(np.uint32) << 16).view(np.float32)


def to_float32(a):
    """Return ``a`` (numpy or cupy, any supported dtype) as float32, same shape and module.

    Returns ``a`` itself when it already is float32. bfloat16 -> float32 is exact.
    """
    if a.dtype == np.float32:
        return a
    if a.dtype == BFLOAT16 and is_cupy(a):
        return _bf16_bits_to_f32(a.view(np.uint16))
    return a.astype(np.float32)


def from_float32(a, dtype):
    """Round ``a`` (float32, numpy or cupy) to ``dtype``; round to nearest even, NaN kept.

    Inputs of another float dtype are first cast to float32, so CPU and GPU results agree
    bit for bit. Returns ``a`` itself when ``dtype`` is float32 and ``a`` already is.
    """
    dtype = check_dtype(dtype)
    a = to_float32(a)
    if dtype == np.float32:
        return a
    if dtype == BFLOAT16 and is_cupy(a):
        return _f32_to_bf16_bits(a, _cupy()).view(BFLOAT16)
    return a.astype(dtype)


def _to_float32_round_odd(a):
    """``a`` (float64, or an integer dtype, numpy or cupy) as float32, rounded to odd: an
    inexact value takes the float32 next to it towards zero with its last bit set. Rounding
    that to bfloat16 (8 significant bits, 24 here) rounds ``a`` once, to nearest even; a
    round-to-nearest float32 in between would round twice. Inf, NaN and overflow as ``astype``.
    (Integers above 2**53 are first rounded to float64, so they can still round twice.)
    """
    xp = _cupy() if is_cupy(a) else np
    a = a.astype(np.float64, copy=False)
    f = a.astype(np.float32)
    back = f.astype(np.float64)
    inexact = xp.isfinite(f) & (back != a)
    f = xp.where(inexact & (xp.abs(back) > xp.abs(a)), xp.nextafter(f, xp.float32(0)), f)
    u = f.view(np.uint32)
    return xp.where(inexact, u | xp.uint32(1), u).view(np.float32)


def astype(a, dtype, copy=True):
    """Cast ``a`` (numpy or cupy) to ``dtype``; bfloat16 casts go through float32 (from float64
    and integers rounded to odd, so the result is rounded once), alike on both devices.

    With ``copy=False`` returns ``a`` itself when the dtype already matches.
    """
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return from_bits(bits(a).copy(), dtype) if copy else a
    if BFLOAT16 in (a.dtype, dtype):
        # Through float32 on both devices (cupy has no bfloat16 casts), so they round alike.
        if dtype == BFLOAT16 and a.dtype.kind in "iuf" and a.dtype.itemsize >= 4 \
                and a.dtype != np.float32:
            a = _to_float32_round_odd(a)
        return from_float32(to_float32(a), dtype)
    return a.astype(dtype)


def to_module(a, xp):
    """Copy of ``a`` in array module ``xp`` (``a`` itself if it already lives there).

    A numpy <-> cupy copy synchronizes with the device.
    """
    if xp is np:
        return to_host(a)
    if is_cupy(a):
        return a
    a = np.asarray(a)
    return from_bits(xp.asarray(bits(a)), a.dtype)  # synchronize


def to_host(a):
    """``a`` as a numpy array (a host copy if ``a`` is a cupy array; ``a`` itself otherwise)."""
    if is_cupy(a):
        return from_bits(bits(a).get(), a.dtype)  # synchronize
    return a
