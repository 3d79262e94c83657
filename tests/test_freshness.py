"""gridkit.freshness.ReadMark: the one rule of when a cached database read is trusted."""

import time

from gridkit.freshness import NEVER, ReadMark


def test_a_read_is_trusted_while_no_commit_and_younger_than_recheck():
    mark = ReadMark(100.0, 3)
    assert mark.trusted(1.0, 3, at=100.0)
    assert mark.trusted(1.0, 3, at=100.999)
    assert not mark.trusted(1.0, 3, at=101.0)  # as old as recheck: read again
    assert not mark.trusted(1.0, 4, at=100.5)  # a commit in this process since the read started
    assert not mark.trusted(0.0, 3, at=100.0)  # recheck 0: never kept


def test_now_marks_the_start_of_a_read_and_never_is_never_trusted():
    before = time.monotonic()
    mark = ReadMark.now(7)
    assert before <= mark.at <= time.monotonic()
    assert mark.commits == 7
    assert mark.trusted(60.0, 7)
    assert not mark.trusted(60.0, 8)
    assert not NEVER.trusted(1e18, -1, at=0.0)
    assert not NEVER.trusted(1e18, 0)
