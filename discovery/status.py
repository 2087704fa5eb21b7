"""What became of a candidate: one enum, whose values are the strings the archive stores (so
runs written before it read back unchanged)."""

from __future__ import annotations

from enum import StrEnum


class CandidateStatus(StrEnum):
    """A candidate's archived status; a `str`, so it compares equal to its value."""

    OK = "ok"  # scored on every training task
    NAN = "nan"  # a task's result was NaN or Inf
    DIVERGED = "diverged"  # a task's loss blew up at every lr
    FAILED = "failed"  # a work item raised or its actor died
    TIMEOUT = "timeout"  # abandoned at its deadline
    SCREENED = "screened"  # dropped before training: unstable, a step-counted schedule, or
    # by the screen task
    CACHED = "cached"  # the same function as an earlier candidate, whose scores it takes

    @property
    def is_failure(self) -> bool:
        """Whether training it went wrong (what a generation reports as failed)."""
        return self in (CandidateStatus.NAN, CandidateStatus.DIVERGED, CandidateStatus.FAILED,
                        CandidateStatus.TIMEOUT)
