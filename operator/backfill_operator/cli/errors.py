"""Exit codes of ``kubectl backfill`` and the one exception the commands raise for users.

Exit codes (documented in ``docs/cli.md``):

=====  ==========================================================================
0      success (for ``create`` without ``--wait``: the Backfill was created)
1      partitions failed (a followed Backfill ended ``Failed``), a declined prompt, or
       no log available
2      usage or input error: bad flags, an unparseable date, a range outside the job's
       partitions, an unknown PartitionedJob or Backfill, a Backfill name taken
3      the cluster could not be used: unreachable, CRDs not installed, credentials refused
=====  ==========================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CLUSTER = 3


class CliError(Exception):
    """An error shown to the user as one line (``error: <message>``), then exit ``exit_code``.

    ``message`` says what went wrong and, where there is one, what to do about it. Never
    carries a traceback to the terminal.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
