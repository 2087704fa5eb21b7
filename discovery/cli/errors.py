"""The command line's user error: one line on stderr, exit code 2."""

from __future__ import annotations

import errno

NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # a full disk, a size limit


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""
