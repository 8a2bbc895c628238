"""Block-sparse matrices on CuPy (GPU) with a numpy CPU path.

Importing the package does not import CuPy; GPU work starts when a matrix is moved to the GPU.
"""

from . import layouts
from .block_layout import BlockLayout
from .matrix import BlockSparseMatrix, random
from .ops import matmul, sddmm

__version__ = "0.1.0"

__all__ = [
    "BlockLayout",
    "BlockSparseMatrix",
    "random",
    "layouts",
    "matmul",
    "sddmm",
    "__version__",
]
