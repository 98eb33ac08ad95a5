"""What the command-line tools share: where the library's log messages go (the ``lsnet`` loggers, shown
as ``[lsnet] ...`` lines), how they end on an error (one paragraph naming the file, record or key at
fault and a non-zero exit code; the traceback only with ``--debug``), and the task packages they serve."""
import importlib
import importlib.util
import logging
import sys
from typing import Callable

# The task packages beyond classification (registered by ``import lsnet``) and the toolbox each needs.
TASK_TOOLBOXES = {'lsnet.detection': 'mmdet', 'lsnet.segmentation': 'mmseg'}


def import_installed_tasks() -> list:
    """Import every task package whose toolbox is installed, so that its data checks, transforms and
    export are registered whatever a config's ``custom_imports`` lists. Returns the imported names."""
    imported = []
    for package, toolbox in TASK_TOOLBOXES.items():
        if importlib.util.find_spec(toolbox) is not None:
            importlib.import_module(package)
            imported.append(package)
    return imported


def show_library_logs() -> None:
    """The ``lsnet`` loggers' INFO and above on stdout as ``[lsnet] message`` (the library only logs;
    a tool decides where it goes)."""
    root = logging.getLogger('lsnet')
    if not any(getattr(h, 'lsnet_cli', False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter('[lsnet] %(message)s'))
        handler.lsnet_cli = True
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def run_cli(main: Callable[[], object]) -> None:
    show_library_logs()
    debug = '--debug' in sys.argv
    if debug:
        sys.argv.remove('--debug')
    try:
        main()
    except KeyboardInterrupt:
        raise
    except Exception as err:  # every failure becomes the short report below
        if debug:
            raise
        print(f'\nerror ({type(err).__name__}): {err}\n(run again with --debug for the traceback)',
              file=sys.stderr)
        sys.exit(1)
