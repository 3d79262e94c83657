"""The one message catalogue: every sentence a user reads, from the domain, the CLI and the web.

Keys are dotted (`error.work.draft_not_found`, `nav.login`); each language is a folder of JSON
files (`gridkit/messages/<lang>/<area>.json`) merged into one table, so each part of the code
keeps its own file and no key is defined twice. Values are `str.format` templates whose fields
are the parameters a `GridkitError` (or a page) carries. zh-CN is the default language.
"""

from __future__ import annotations

import json
import string
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
CATALOGUE_DIR = Path(__file__).resolve().parent


def normalise(value: str | None) -> str | None:
    """Return the supported language a tag like 'zh', 'zh-Hans-CN' or 'en-GB' means, else None."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("zh"):
        return "zh-CN"
    if value.startswith("en"):
        return "en"
    return None


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Return every message of `lang`, merged from its folder; a key defined twice is a bug."""
    table: dict[str, str] = {}
    origin: dict[str, str] = {}
    for path in sorted((CATALOGUE_DIR / lang).glob("*.json")):
        with open(path, encoding="utf-8") as fh:
            for key, value in json.load(fh).items():
                if key in table:
                    raise RuntimeError(f"message {key!r} is defined in both {origin[key]} and {path.name}")
                table[key] = value
                origin[key] = path.name
    return table


class _Params(dict):
    """Format parameters that leave an unknown field visible instead of raising."""

    def __missing__(self, key):
        return "{" + key + "}"


_FORMATTER = string.Formatter()


def render(key: str, lang: str | None = None, /, **params) -> str:
    """Return message `key` in `lang` (default zh-CN) with `params` filled in.

    A key missing from `lang` falls back to English, then to the key itself, so a missing
    translation is visible (and caught by the catalogue tests) rather than a crash.
    """
    lang = normalise(lang) or DEFAULT_LANGUAGE
    template = catalogue(lang).get(key)
    if template is None:
        template = catalogue("en").get(key, key)
    values = _Params({name: localise(value, lang) for name, value in params.items()})
    try:
        return _FORMATTER.vformat(template, (), values)
    except (ValueError, IndexError, KeyError, AttributeError):
        return template


def localise(value, lang: str):
    """Return `value` ready to show in `lang`: a `Message` rendered, lists joined, others as they are."""
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Message) for v in value):
        sep = "；" if lang == "zh-CN" else "; "
        return sep.join(v.render(lang) for v in value)
    return value


class Message:
    """A message key with parameters, rendered later in the reader's language."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params):
        self.key = key
        self.params = params

    def render(self, lang: str | None = None) -> str:
        """Return the message in `lang`."""
        return render(self.key, lang, **self.params)

    def to_dict(self) -> dict:
        """Return {"key", "params"} for JSON."""
        return {"key": self.key, "params": self.params}

    def __str__(self) -> str:
        return self.render("en")

    def __repr__(self) -> str:
        return f"Message({self.key!r}, **{self.params!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)
