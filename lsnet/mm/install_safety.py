"""Importing this module installs the checkpoint safety into MMEngine (``safe_io.install_safe_io``).

It is what a config names to get the same safety under any launcher, mmdet's, mmseg's and mim's own
``train.py`` included::

    custom_imports = dict(imports=['lsnet', 'lsnet.mm.install_safety'], allow_failed_imports=False)

The project's configs do so in their ``_base_/default_runtime_*.py``; ``tools/train.py`` and
``tools/test.py`` install it themselves.
"""
from .safe_io import install_safe_io

install_safe_io()
