"""Patch mmcv's setup.py so its sdist builds against current PyTorch.

mmcv 2.x hard-codes ``-std=c++17`` (and ``-std=c++14`` for old torch) for the host compiler and
nvcc, but the headers of torch >= 2.13 require C++20. We rewrite every such flag to the requested
standard and add ``-g0`` to host compilation so the (large) ops library builds and links faster.
The patch is applied to a private copy of the sdist, never to an installed package.
"""
import argparse
import re
from pathlib import Path


def patch(text: str, std: str) -> str:
    patched, count = re.subn(r"'-std=c\+\+1[47]'", f"'-std={std}'", text)
    if count == 0:
        raise RuntimeError('no -std=c++14/17 flag found: is this an mmcv 2.x setup.py?')
    # Host-compiler flags only: nvcc rejects -g0.
    patched, cxx_count = re.subn(r"(extra_compile_args\['cxx'\] = \['-std=" + re.escape(std) + r"')\]",
                                 r"\1, '-g0']", patched)
    if cxx_count == 0:
        raise RuntimeError("no extra_compile_args['cxx'] assignment found to add -g0 to")
    return patched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('setup_py', type=Path)
    parser.add_argument('--std', default='c++20', choices=('c++17', 'c++20'))
    args = parser.parse_args()
    args.setup_py.write_text(patch(args.setup_py.read_text(), args.std))
    print(f'patched {args.setup_py}: -std={args.std}, -g0 for host code')


if __name__ == '__main__':
    main()
