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
from absl import logging as absl_logging

USAGE_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)


# Libraries whose INFO lines (Orbax's per-checkpoint chatter, TFDS's build steps) are noise.
_LIBRARIES = ("/orbax/", "/jax/", "/jaxlib/", "/tensorflow_datasets/", "/etils/", "/grain/")


class _LibraryInfoFilter(logging.Filter):
    """Drops records below WARNING that come from a library's own files."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        return record.levelno >= logging.WARNING or not any(lib in path for lib in _LIBRARIES)


def quiet_jax() -> None:
    """Hides the INFO lines of jax (its backend probe's "Unable to initialize backend 'tpu'") and
    of the libraries around it (Orbax, TFDS, grain) unless `--verbosity` was given; the
    toolkit's own INFO lines stay."""
    if flags.FLAGS["verbosity"].present:
        return
    logging.getLogger("jax").setLevel(logging.WARNING)
    handler = absl_logging.get_absl_handler()
    if not any(isinstance(f, _LibraryInfoFilter) for f in handler.filters):
        handler.addFilter(_LibraryInfoFilter())


def exit_with_error(error: Exception, status: int = 2) -> NoReturn:
    """Prints `error: <message>` as one line on stderr and exits with `status` (2: bad input)."""
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr, flush=True)
    sys.exit(status)
