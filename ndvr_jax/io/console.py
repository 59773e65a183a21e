"""What every binary does with its console: jax's INFO chatter hidden, bad input in one line.

Exit status 2 means bad input or usage (a malformed or missing list, an unknown setting, a
missing weights file, a workdir that is a file); 1 means the run went through but some files
failed (extraction); 0 means everything worked.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

from absl import flags

USAGE_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)


def quiet_jax() -> None:
    """Hides jax's INFO lines (its backend probe's "Unable to initialize backend 'tpu'") unless
    `--verbosity` was given."""
    if not flags.FLAGS["verbosity"].present:
        logging.getLogger("jax").setLevel(logging.WARNING)


def exit_with_error(error: Exception, status: int = 2) -> NoReturn:
    """Prints `error: <message>` as one line on stderr and exits with `status` (2: bad input)."""
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
    sys.exit(status)
