"""How our command-line tools end on an error: one paragraph naming the file, record or key at
fault and a non-zero exit code; the traceback only with ``--debug``."""
import sys
from typing import Callable


def run_cli(main: Callable[[], object]) -> None:
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
