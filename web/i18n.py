"""The one translation layer of the web UI: `t(key, **values)`, `_()` in templates.

The language comes from `?lang=` (then kept in a cookie), else the cookie, else the
deployment's `Settings.lang` (zh-CN unless configured). The browser's Accept-Language is not
used: a city deployment serves Chinese first, whatever locale a browser happens to ship with.
Strings live in the one message catalogue, gridkit/messages/<lang>/*.json.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import urlencode

from flask import Flask, current_app, g, request

from gridkit.messages import DEFAULT_LANGUAGE, LANGUAGES, normalise
from gridkit.messages import catalogue as catalog

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "catalog", "current_language", "normalise", "t"]

COOKIE = "gridkit_lang"
# The strings of gridkit-forms.js, on every page: the messages of the browser's own form checks
# (a required field, a too short password …), of the file and date controls and the buttons of a
# confirmation (window.confirm's are the browser's), in the page's language rather than the browser's.
FORM_JS_STRINGS = (
    "form.required",
    "form.required_choice",
    "form.required_file",
    "form.too_short",
    "form.too_long",
    "form.range_under",
    "form.range_over",
    "form.pattern",
    "form.bad_value",
    "form.date.invalid",
    "form.file.none",
    "form.file.chosen",
    "form.confirm.ok",
    "form.confirm.cancel",
)

log = logging.getLogger(__name__)


def current_language() -> str:
    """Return the language of this request (see the module docstring for the order)."""
    if "lang" not in g:
        g.lang = _choose_language()
    return g.lang


def _choose_language() -> str:
    chosen = normalise(request.args.get("lang"))
    if chosen:
        g.lang_from_query = chosen
        return chosen
    chosen = normalise(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    settings = current_app.config.get("GRIDKIT_SETTINGS")
    return normalise(getattr(settings, "lang", None)) or DEFAULT_LANGUAGE


def t(key: str, **values) -> str:
    """Return the string `key` in the current language, with `{name}` fields filled from `values`."""
    text = catalog(current_language()).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key)
    if text is None:
        log.warning("no translation for %r", key)
        text = key
    return text.format(**values) if values else text


def t_or(key: str, fallback: str, **values) -> str:
    """Return the string `key` in the current language, or `fallback` (data shown as is) when there is none."""
    return t(key, **values) if key in catalog(DEFAULT_LANGUAGE) else fallback


def strings(*keys: str) -> dict[str, str]:
    """Return {key: translated string} for the strings a script needs (filled in by the script)."""
    return dict(_strings(current_language(), keys))


@lru_cache(maxsize=512)
def _strings(lang: str, keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Scripts get the same dozens of strings on every page view: look them up once per language.
    table, fallback = catalog(lang), catalog(DEFAULT_LANGUAGE)
    return tuple((key, table.get(key) or fallback.get(key) or key) for key in keys)


def lang_url(lang: str) -> str:
    """Return the current URL with `?lang=` set to `lang`, for the language switch."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [lang]
    return request.script_root + request.path + "?" + urlencode(args, doseq=True)


def init_app(app: Flask) -> None:
    """Choose each request's language, keep a `?lang=` choice in a cookie, expose `_` to templates."""

    @app.before_request
    def _pick_language():
        current_language()

    @app.after_request
    def _remember_language(response):
        chosen = g.get("lang_from_query")
        if chosen:
            response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        response.vary.add("Cookie")
        return response

    app.jinja_env.globals.update(
        _=t,
        t_or=t_or,
        lang_url=lang_url,
        current_language=current_language,
        languages=LANGUAGES,
        form_strings=lambda: strings(*FORM_JS_STRINGS),
    )
