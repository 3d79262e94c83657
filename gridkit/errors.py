"""Errors a user can cause. Anything else is a bug and propagates.

Every error carries a stable `code` and its parameters; the face that shows it (CLI, web page,
JSON API) renders the sentence from the message catalogue (`gridkit.messages`, key
`error.<code>`) in its reader's language:

    raise NotFound("work.draft_not_found", draft=draft_id)

`exc.render(lang)` gives the sentence; `exc.message` is the English one, for logs and tests.
"""

from __future__ import annotations

from gridkit import messages


class GridkitError(Exception):
    """Base class: a code, its parameters and, for validation, the list of problems found."""

    status = 400

    def __init__(self, code: str, /, *, problems: list | None = None, **params):
        super().__init__(code)
        self.code = code
        self.params = params
        self.problems = problems or []

    @property
    def key(self) -> str:
        """Return the catalogue key of this error's sentence."""
        return f"error.{self.code}"

    def render(self, lang: str | None = None) -> str:
        """Return the sentence in `lang` (default zh-CN)."""
        if self.key not in messages.catalogue("en"):
            # Not a catalogue code: a sentence still written in place (tests/test_messages.py
            # lists every such raise; none may remain).
            return self.code
        return messages.render(self.key, lang, **self.params)

    @property
    def message(self) -> str:
        """Return the English sentence (logs, tests, machine-readable output)."""
        return self.render("en")

    def __str__(self) -> str:
        return self.message

    def to_dict(self, lang: str | None = None) -> dict:
        """Return {"error", "code", "message", "params"} for JSON output."""
        return {
            "error": type(self).__name__,
            "code": self.code,
            "message": self.render(lang),
            "params": {k: messages.localise(v, lang or messages.DEFAULT_LANGUAGE) for k, v in self.params.items()},
        }


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


class Unauthorized(GridkitError):
    """Nobody is signed in (or the credentials are wrong) and the action needs a user."""

    status = 401
