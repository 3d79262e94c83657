"""The problems `gridkit.io.vector` reports, and the error that carries them.

A problem (or note) is a plain dict: feature index, code, field, kind and a message for a
coordinator, with the catalogue key and params when the message is a `gridkit.messages.Message`.
`VectorReadError` carries every problem found. These helpers sit below vector.py and its sibling
modules (archive.py, textcodec.py) so that they all import from here and never from each other's
callers; `gridkit.io.vector` re-exports the public ones.
"""

from __future__ import annotations

from collections import Counter

from gridkit.errors import ValidationError
from gridkit.messages import Message

__all__ = ["ImportRefused", "VectorReadError", "problem", "problem_text", "refusal"]

# How many feature indexes a file-level problem lists before "…".
_LIST_AT_MOST = 20


class VectorReadError(ValidationError):
    """A vector file cannot be used; `problems` lists every problem found, `notes` what was done."""

    def __init__(
        self,
        code: str,
        /,
        *,
        problems: list | None = None,
        notes: list | None = None,
        source: dict | None = None,
        **params,
    ):
        super().__init__(code, problems=problems, **params)
        self.notes = notes or []
        self.source = source or {}


class ImportRefused(VectorReadError):
    """An import found problems and wrote nothing; `problems`, `notes` and `source` say what and where."""


def problem(kind: str, message: str | Message, *, index=None, code=None, field: str | None = None) -> dict:
    """Return a problem or note dict: feature index, code, field, kind and a message for a coordinator.

    `message` is a catalogue Message (preferred: the dict then holds its "key" and "params", and
    "message" is the English sentence) or, from older callers, an English sentence.
    """
    entry = {"index": None if index is None else int(index), "code": code, "field": field, "kind": kind}
    if isinstance(message, Message):
        entry["message"] = message.render("en")
        entry["key"] = message.key
        entry["params"] = {k: _plain(v) for k, v in message.params.items()}
    else:
        entry["message"] = message
    return entry


def _plain(value):
    """Return a message parameter as JSON: a nested Message becomes {"key": …, "params": {…}}."""
    if isinstance(value, Message):
        return {"key": value.key, "params": {k: _plain(v) for k, v in value.params.items()}}
    return value


def _message(key: str, params: dict) -> Message:
    """Return the Message a problem dict's key and (plain) params stand for."""

    def back(value):
        if isinstance(value, dict) and set(value) == {"key", "params"}:
            return _message(value["key"], value["params"])
        return value

    return Message(key, **{k: back(v) for k, v in params.items()})


def problem_text(entry: dict, lang: str | None = None) -> str:
    """Return a problem or note dict's sentence in `lang` (its English message if it has no key)."""
    if entry.get("key"):
        return _message(entry["key"], entry.get("params", {})).render(lang)
    return entry.get("message", "")


# Problems of one file listed one by one (in the refusal and its report); past this many, the rest are counted
# by kind. Memory stays flat when every row of a file of millions is wrong for one reason (residents imported
# before their buildings: each row an unknown building code), and such a file has one cause to fix.
LISTED_PROBLEMS = 50_000


class ProblemList(list):
    """The problems of one import: the first `limit` row problems kept whole, the rest counted by kind in
    `unlisted`; problems of the whole file (no row) are always kept."""

    def __init__(self, entries=(), *, limit: int | None = None):
        super().__init__()
        self.limit = LISTED_PROBLEMS if limit is None else limit
        self.unlisted: Counter = Counter()
        self.extend(entries)

    @property
    def full(self) -> bool:
        """Whether a further row problem would only be counted (its dict need not be made)."""
        return len(self) >= self.limit

    def counted(self, kind: str) -> bool:
        """Count a row problem of `kind` without its dict when the list is full; return whether it was."""
        if self.full:
            self.unlisted[kind] += 1
        return self.full

    def append(self, entry: dict) -> None:
        if len(self) < self.limit or entry.get("index") is None:
            super().append(entry)
        else:
            self.unlisted[entry["kind"]] += 1

    def extend(self, entries) -> None:
        for entry in entries:
            self.append(entry)


def problem_count(problems: list[dict]) -> int:
    """Return how many problems were found: those listed and those only counted (ProblemList)."""
    return len(problems) + sum(getattr(problems, "unlisted", {}).values())


def unlisted_problems(problems: list[dict]) -> dict[str, int]:
    """Return the number of problems found but not listed, by kind (none unless a ProblemList overflowed)."""
    return dict(getattr(problems, "unlisted", {}))


def first_problem(problems: list[dict]) -> Message | str:
    """Return the first problem's sentence, to name in a refusal's one line (a Message when it has a key)."""
    first = problems[0]
    return _message(first["key"], first["params"]) if first.get("key") else first["message"]


def refusal(display: str, problems: list[dict], what: str) -> tuple[str, dict]:
    """Return (error code, params) of a refusal: how many problems, the first one, and that nothing was `what`.

    `what` is "read", "imported" or "unpacked".
    """
    text = first_problem(problems)
    count = problem_count(problems)
    params = {"file": display, "count": count, "first": text, "what": Message(f"geometry.what.{what}")}
    if count > len(problems):
        return "geometry.refused_listed", dict(params, listed=len(problems))
    return ("geometry.refused_one" if count == 1 else "geometry.refused"), params


def _fatal(source: dict, kind: str, sentence: str, /, **params) -> VectorReadError:
    """Return the error for a problem that makes the rest of the file meaningless (key error.geometry.<sentence>)."""
    message = Message(f"error.geometry.{sentence}", **params)
    return VectorReadError(f"geometry.{sentence}", problems=[problem(kind, message)], source=source, **params)


# Names a message lists at most (columns of a header): a header of thousands (a data row taken for it, a sheet
# of 16,384 columns) made one line of megabytes.
NAMES_LISTED = 60


def listed_names(names: list[str]) -> str:
    """Return the first NAMES_LISTED names joined by commas, then how many more there are ("… (+N)")."""
    more = len(names) - NAMES_LISTED
    return ", ".join(names[:NAMES_LISTED]) + (f" … (+{more})" if more > 0 else "")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
