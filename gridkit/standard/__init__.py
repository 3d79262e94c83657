"""National and industry standards as pure Python: identity numbers, code layouts, category tables."""

from __future__ import annotations

from gridkit.errors import ValidationError
from gridkit.messages import Message


class InvalidValue(ValidationError, ValueError):
    """A value that breaks a standard (a code layout, an ID number, a category row).

    A ValidationError with a catalogue code and parameters, so the CLI and the web render it in
    the reader's language; also a ValueError, so pure callers (importers collecting rejected
    rows) catch it as before and read its English sentence with str().
    """

    def as_message(self) -> Message:
        """Return the error as a Message, to nest inside another sentence."""
        return Message(self.key, **self.params)
