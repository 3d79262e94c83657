"""Errors a user can cause. Anything else is a bug and propagates."""

from __future__ import annotations


class GridkitError(Exception):
    """Base class: the message is written for the person who caused it."""

    status = 400

    def __init__(self, message: str, *, problems: list | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class SetupError(GridkitError):
    """The machine or settings are not usable (packages missing, home unwritable, server unreachable)."""

    status = 503


class NotFound(GridkitError):
    """A named thing (code, id, edition) does not exist."""

    status = 404


class ValidationError(GridkitError):
    """Input breaks a rule; `problems` lists every problem found."""

    status = 400


class Conflict(GridkitError):
    """The thing changed or exists already (duplicate code, stale revision)."""

    status = 409


class InvalidTransition(GridkitError):
    """A state change that the workflow does not allow."""

    status = 409


class PermissionDenied(GridkitError):
    """The user's role or area does not allow this."""

    status = 403
