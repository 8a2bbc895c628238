#!/usr/bin/env bash
# A short hash of the files that decide what runs on the GPU (the package, the kernel templates,
# the tests, .ci), identical here and on the device's copy of the working tree.
cd "$(dirname "$0")/.." && find cupy_bsparse kernels tests .ci -type f \( -name '*.py' -o -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -path '.ci/*' \) \
  -not -path '*/__pycache__/*' | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-12
