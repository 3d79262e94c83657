"""When something read from the database may be used again without reading it again: `ReadMark`.

One rule for every in-process cache of database state (the tile cache of web/tiles.py,
`ResponsibilityCache`, `KnownUsers` of web/auth.py): what was read is trusted while this process
committed nothing since and for less than `recheck` seconds after the read *started*. A commit
here is so seen at once; a commit by another process is seen by every request that starts more
than `recheck` seconds after that commit (a read that started after the commit sees it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadMark:
    """When a read started: time.monotonic() and this process's commit count, both taken before it."""

    at: float
    commits: int

    @classmethod
    def now(cls, commits: int) -> ReadMark:
        """Return the mark of a read starting now, after `commits` commits of this process."""
        return cls(time.monotonic(), commits)

    def trusted(self, recheck: float, commits: int, at: float | None = None) -> bool:
        """Whether what this read gave may be used at `at` (default now) after `commits` commits."""
        return commits == self.commits and (time.monotonic() if at is None else at) - self.at < recheck


# The mark of a read that never happened: trusted never.
NEVER = ReadMark(float("-inf"), -1)
