"""Whether a kernel-source change leaves the shipped specialisations' machine code alone (no
GPU): compiles every spec of ``_specs.all_specializations`` whose template is named, at the
working tree and at git revision BASE (its kernels/ only), for sm_90a with NVRTC, and lists
the specs whose cubins differ. v41 used it to show that BPW 2 on sddmm_tall.cu's 16-bit wgmma
consumers left all 33 existing sddmm_tall specs byte-identical, so the change needed no GPU
suite for the default path.

    PYTHONPATH=. python probes/cubin_diff.py BASE TEMPLATE.cu [SKIP_JSON]

SKIP_JSON (optional): a JSON dict of #defines, or a list of them; a spec containing all of one
dict's is skipped (the new knob's own specs, which have no BASE build)."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from cupy_bsparse import _specs, compiler


def digests(specs, name, kdir=None):
    """{spec: sha1 of its sm_90a cubin}, with the templates read from ``kdir`` if given."""
    own = compiler.kernel_dir
    if kdir:
        compiler.kernel_dir = lambda: kdir
    compiler._template.cache_clear()       # the templates are cached by name
    try:
        return {s: hashlib.sha1(compiler.compile_cubin(name, s, "90a")[0]).hexdigest()
                for s in specs}
    finally:
        compiler.kernel_dir = own
        compiler._template.cache_clear()


def main(base, name, skip=()):
    skip = [skip] if isinstance(skip, dict) else list(skip or ())
    specs = sorted({s for n, s, _ in _specs.all_specializations() if n == name
                    and not any(all(dict(s).get(k) == v for k, v in d.items()) for d in skip)})
    new = digests(specs, name)
    with tempfile.TemporaryDirectory() as tmp:
        tar = subprocess.run(["git", "archive", base, "kernels"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
        old = digests(specs, name, os.path.join(tmp, "kernels"))
    diff = [s for s in specs if new[s] != old[s]]
    print(f"{name}: {len(specs)} specs, {len(diff)} differ from {base}")
    for s in diff:
        print("  ", dict(s))
    return 1 if diff else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None))
