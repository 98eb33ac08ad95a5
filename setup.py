"""Builds the optional CPU SKA extension (``lsnet._ska_cpu``); metadata lives in pyproject.toml.

Without a compiler (or torch at build time) the package installs without it and SKA uses its plain
PyTorch path on CPU.
"""
import os

from setuptools import setup

ext_modules, cmdclass = [], {}
if os.environ.get('LSNET_NO_EXT') != '1':
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        pass
    else:
        ext_modules = [CppExtension('lsnet._ska_cpu', ['lsnet/ops/csrc/ska_cpu.cpp'],
                                    extra_compile_args=['-O3', '-fopenmp', '-g0'], extra_link_args=['-fopenmp'])]
        cmdclass = {'build_ext': BuildExtension.with_options(use_ninja=True)}

setup(ext_modules=ext_modules, cmdclass=cmdclass)
