"""The package's one layering rule, checked on the import statements of every module, and what
`pip install .` puts on the import path.

core (lsnet.models, lsnet.ops, lsnet.checkpoint, lsnet.deploy): torch and timm, no OpenMMLab
  <- lsnet.mm (the OpenMMLab training core): the core, MMEngine, mmcv; no task, no mmdet/mmseg
  <- tasks (lsnet.classification, lsnet.detection, lsnet.segmentation): the core and lsnet.mm; no other task
"""
import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mm_helpers import ROOT

PACKAGE = ROOT / 'lsnet'
CORE = ('lsnet.models', 'lsnet.ops', 'lsnet.checkpoint', 'lsnet.deploy')
TASKS = ('lsnet.classification', 'lsnet.detection', 'lsnet.segmentation')
OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain')
# The one exception: the backbones accept OpenMMLab's init_cfg initializers (Kaiming, Normal, ...),
# looked up in MMEngine's registry when MMEngine is installed (a guarded import inside a method).
CORE_MAY_IMPORT = {'lsnet.models.backbone_base': ('mmengine.model', 'mmengine.registry')}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path: Path) -> set:
    """Absolute names of everything ``path`` imports (relative imports resolved), at any depth."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f'{base}.{alias.name}' for alias in node.names)
    return found


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + '.') for p in prefixes)


MODULES = sorted(PACKAGE.rglob('*.py'))


@pytest.mark.parametrize('path', MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_follow_the_layers(path):
    name, imported = module_name(path), imports_of(path)
    if within(name, CORE):
        forbidden = [i for i in imported if within(i, OPENMMLAB + TASKS + ('lsnet.mm',))
                     and not within(i, CORE_MAY_IMPORT.get(name, ()))]
    elif within(name, ('lsnet.mm',)):
        forbidden = [i for i in imported if within(i, TASKS + ('mmdet', 'mmseg', 'mmpretrain'))]
    elif within(name, TASKS):
        own = next(t for t in TASKS if within(name, (t,)))
        forbidden = [i for i in imported if within(i, tuple(t for t in TASKS if t != own))]
    else:
        forbidden = []
    assert not forbidden, f'{name} imports {sorted(forbidden)} across the layers'


def test_pip_install_puts_only_lsnet_on_the_import_path(tmp_path):
    """The wheel `pip install .` builds holds one top-level package, ``lsnet`` (built from a copy of the
    sources, without the optional C++ extension, so nothing is written into the checkout)."""
    import os
    import shutil
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('pyproject.toml', 'setup.py', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / 'lsnet', ignore=shutil.ignore_patterns('__pycache__', '*.so'))
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                             '-w', str(tmp_path), str(source)], capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, LSNET_NO_EXT='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = next(tmp_path.glob('*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split('/')[0] for n in names if not n.split('/')[0].endswith(('.dist-info', '.data'))}
    assert top == {'lsnet'}, top
    assert 'lsnet/detection/export.py' in names and 'lsnet/segmentation/datacheck.py' in names
