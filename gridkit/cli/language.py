"""The CLI's language, and click's help in it: every help text a user reads is a catalogue message.

The language is `--lang` on the root command, else GRIDKIT_LANG, else zh-CN.

One rule names every help text (the docstrings and `help=` stay as the code's documentation):
- a command's or group's help is `cli.help.<path>` (`cli.help.dept.add`; the root: `cli.help.gridkit`);
- an option's help is the first of `cli.option.<path>.<name>`, `cli.option.<path minus its last
  word>.<name>` … `cli.option.<name>` in the catalogue, so an option shared by many commands
  (`--json`, `--encoding`, `--as`) is written once and one command's own meaning overrides it.
A key missing from the catalogue falls back to the English docstring (tests/test_cli_language.py
fails on it). Usage, section headings and `[default: …]` come from the catalogue too.
"""

from __future__ import annotations

import inspect
import os
import re
from contextlib import contextmanager

import click

from gridkit.messages import DEFAULT_LANGUAGE, Message, catalogue, normalise, render

ROOT_HELP = "gridkit"


def cli_language() -> str:
    """Return the language of the CLI's messages: --lang, else GRIDKIT_LANG, else zh-CN."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("gridkit.lang"):
        return ctx.meta["gridkit.lang"]
    return normalise(os.environ.get("GRIDKIT_LANG")) or DEFAULT_LANGUAGE


def say(key: str, /, **params) -> str:
    """Return CLI message `key` in the CLI's language."""
    return render(key, cli_language(), **params)


def set_language(ctx: click.Context, _param, value: str | None) -> None:
    """Callback of the root `--lang`: every later message and help of this run is in that language."""
    if value is None:
        return
    lang = normalise(value)
    if lang is None:
        raise click.BadParameter(render("error.config.unknown_language", None, value=value, languages="zh-CN, en"))
    ctx.meta["gridkit.lang"] = lang


def command_path(ctx: click.Context) -> tuple[str, ...]:
    """Return the names of the commands from the root down to `ctx`'s (the root itself excluded)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return tuple(reversed(names))


def command_help_key(path: tuple[str, ...]) -> str:
    """Return the catalogue key of the help of the command at `path`."""
    return "cli.help." + ".".join(path or (ROOT_HELP,))


def option_help_key(path: tuple[str, ...], name: str) -> str | None:
    """Return the catalogue key of option `name`'s help in the command at `path` (most specific first), or None."""
    known = catalogue("en")
    for depth in range(len(path), -1, -1):
        key = ".".join(("cli.option", *path[:depth], name))
        if key in known:
            return key
    return None


def _cleaned(text: str | None) -> str:
    return inspect.cleandoc(text).partition("\f")[0] if text else ""


def _short(text: str, limit: int) -> str:
    """Return the first sentence of `text`, cut to `limit` columns (CJK characters count double)."""
    first = " ".join(text.split("\n\n")[0].replace("\b", "").split())
    for end in ("。", ". ", "："):
        if end in first:
            first = first.split(end)[0] + end.strip()
            break
    width = 0
    for i, ch in enumerate(first):
        width += 2 if ord(ch) > 0x2E80 else 1
        if width > limit:
            return first[:i].rstrip() + "…"
    return first


@contextmanager
def section(formatter: click.HelpFormatter, heading: str):
    """Write a help section under `heading` as the catalogue punctuates it ("选项：", "Options:").

    click's own `formatter.section` appends an ASCII colon to every heading, whatever the language.
    """
    formatter.write_paragraph()
    formatter.write(f"{'':>{formatter.current_indent}}{heading}\n")
    formatter.indent()
    try:
        yield
    finally:
        formatter.dedent()


# click's messages about a value its type refused (click/types.py, English whatever the language),
# each read back into the catalogue message that says it in the reader's language: {value} and the
# rest are click's own text (the value as typed, quoted; the choices; the formats).
_BAD_VALUES = (
    (re.compile(r"^(?P<value>.+) is not a valid integer\.$", re.S), "cli.click.not_integer"),
    (re.compile(r"^(?P<value>.+) is not a valid float\.$", re.S), "cli.click.not_number"),
    (re.compile(r"^(?P<value>.+) is not in the range (?P<range>.+)\.$", re.S), "cli.click.out_of_range"),
    (re.compile(r"^(?P<value>.+) is not one of (?P<choices>.+)\.$", re.S), "cli.click.not_a_choice"),
    (re.compile(r"^(?P<value>.+) is not (?P<choices>'.*')\.$", re.S), "cli.click.not_a_choice"),
    (re.compile(r"^(?P<value>.+) does not match the formats? (?P<formats>.+)\.$", re.S), "cli.click.not_a_date"),
    (
        re.compile(r"^(?P<value>.+) is not a valid boolean\. Recognized values: (?P<choices>.+)$", re.S),
        "cli.click.not_a_boolean",
    ),
    (re.compile(r"^(?P<value>.+) is not a valid UUID\.$", re.S), "cli.click.not_a_uuid"),
    (re.compile(r"^(?:File|Directory|Path) (?P<value>.+) does not exist\.$", re.S), "cli.click.path_missing"),
    (re.compile(r"^(?:File|Directory|Path) (?P<value>.+) is a file\.$", re.S), "cli.click.path_is_file"),
    (re.compile(r"^(?:File|Directory|Path) (?P<value>.+) is a directory\.$", re.S), "cli.click.path_is_directory"),
    (re.compile(r"^(?:File|Directory|Path) (?P<value>.+) is not readable\.$", re.S), "cli.click.path_unreadable"),
    (re.compile(r"^(?:File|Directory|Path) (?P<value>.+) is not writable\.$", re.S), "cli.click.path_unwritable"),
)


def bad_value_reason(message: str, lang: str) -> str:
    """Return click's reason for refusing a value (`'x' is not a valid integer.`) in `lang`.

    A reason not of click's types (a gridkit callback's, already from the catalogue) is kept as it is.
    """
    if lang == "en":
        return message
    for pattern, key in _BAD_VALUES:
        found = pattern.match(message)
        if found:
            return render(key, lang, **found.groupdict())
    return message


class Failure(click.ClickException):
    """A refusal shown as one line, "错误：…" / "Error: …" in the CLI's language (click's prefix is English)."""

    def __init__(self, message: str, lang: str | None = None):
        super().__init__(message)
        self.lang = lang or cli_language()

    def show(self, file=None):
        click.echo(render("cli.error", self.lang, message=self.format_message()), file=file, err=file is None)


class Aborted(click.ClickException):
    """The user said no, or broke off (Ctrl-C, end of input): "已取消。" / "Aborted!" (click's own is English)."""

    def __init__(self, lang: str | None = None):
        self.lang = lang or cli_language()
        super().__init__(render("cli.aborted", self.lang))

    def show(self, file=None):
        click.echo(self.format_message(), file=file, err=file is None)


class Unexpected(click.ClickException):
    """A fault of gridkit's own (any exception that is not a GridkitError): its traceback on stderr with the
    rows PostgreSQL quotes in an error's DETAIL left out and phone and ID numbers masked (the rule of the
    web's logs, gridkit.pii.scrub_log_text), then one line in the CLI's language; exit status 1."""

    def __init__(self, exc: BaseException, lang: str | None = None):
        import traceback

        from gridkit.pii import scrub_log_text

        self.lang = lang or cli_language()
        self.details = scrub_log_text("".join(traceback.format_exception(exc)))
        super().__init__(render("cli.unexpected", self.lang, error=type(exc).__name__))

    def show(self, file=None):
        click.echo(self.details.rstrip("\n"), file=file, err=file is None)
        click.echo(render("cli.error", self.lang, message=self.format_message()), file=file, err=file is None)


YES, NO = ("y", "yes", "是"), ("n", "no", "否", "")


def confirm(text: str) -> None:
    """Ask `text` on stderr until answered yes or no (no by default); raise `Aborted` at no.

    click.confirm says "Error: invalid input" and "Aborted!" in English whatever the language.
    """
    while True:
        try:
            answer = click.prompt(
                text + say("cli.confirm.choices"), default="", show_default=False, prompt_suffix="", err=True
            )
        except click.Abort:
            click.echo(err=True)  # closes the line the prompt left open
            raise Aborted() from None
        answer = answer.strip().lower()
        if answer in YES:
            return
        if answer in NO:
            raise Aborted()
        click.echo(say("cli.confirm.invalid"), err=True)


# click's other usage errors (its parser's, English whatever the language), read back into the catalogue's.
_USAGE_MESSAGES = (
    (re.compile(r"^Got unexpected extra arguments? \((?P<args>.*)\)$", re.S), "cli.click.extra_arguments"),
    (re.compile(r"^Option (?P<name>'.+') requires an argument\.$", re.S), "cli.click.option_needs_value"),
    (re.compile(r"^Option (?P<name>'.+') requires (?P<count>\d+) arguments\.$", re.S), "cli.click.option_needs_values"),
    (re.compile(r"^Option (?P<name>'.+') does not take a value\.$", re.S), "cli.click.option_takes_no_value"),
)


class UsageFailure(click.UsageError):
    """Click's usage error (missing argument, unknown option or command …) in the CLI's language."""

    def __init__(self, original: click.UsageError):
        super().__init__(original.message, original.ctx)
        self.original = original
        meta = original.ctx.meta if original.ctx is not None else {}
        self.lang = meta.get("gridkit.lang") or cli_language()

    def format_message(self) -> str:
        exc, lang = self.original, self.lang
        if isinstance(exc, click.MissingParameter) and exc.param is not None:
            kind = exc.param_type or exc.param.param_type_name
            if kind in ("argument", "option"):
                return render(f"cli.click.missing_{kind}", lang, name=exc.param.get_error_hint(exc.ctx))
        if isinstance(exc, click.NoSuchOption):
            text = render("cli.click.no_such_option", lang, name=exc.option_name)
            if exc.possibilities:
                text += render("cli.click.did_you_mean", lang, names=", ".join(sorted(exc.possibilities)))
            return text
        if isinstance(exc, click.BadParameter) and exc.param is not None:
            name = exc.param_hint or exc.param.get_error_hint(exc.ctx)
            return render("cli.click.bad_value", lang, name=name, reason=bad_value_reason(exc.message, lang))
        if type(exc).__name__ == "NoSuchCommand":
            return render("cli.click.no_such_command", lang, name=exc.command_name)
        for pattern, key in _USAGE_MESSAGES:
            found = pattern.match(exc.message)
            if found:
                return render(key, lang, **found.groupdict())
        return exc.format_message()

    def show(self, file=None):
        err = file is None
        ctx = self.ctx
        if ctx is not None:
            hint = ""
            if ctx.command.get_help_option(ctx) is not None:
                hint = render("cli.click.try_help", self.lang, command=ctx.command_path, option="--help") + "\n"
            with ctx.scope(cleanup=False):  # the usage line reads the language from the context (--lang)
                usage = ctx.get_usage()
            click.echo(f"{usage}\n{hint}", file=file, err=err, color=ctx.color)
        click.echo(render("cli.error", self.lang, message=self.format_message()), file=file, err=err)


class CatalogueHelp:
    """Mixin of gridkit's click commands and groups: help, usage and headings from the catalogue.

    A command made from data (one per report) sets `help_message` instead of having a key of its own.
    """

    help_message: Message | None = None

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise (exc if isinstance(exc, UsageFailure) else UsageFailure(exc)) from None

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise (exc if isinstance(exc, UsageFailure) else UsageFailure(exc)) from None

    def localised_help(self, path: tuple[str, ...]) -> str:
        if self.help_message is not None:
            return self.help_message.render(cli_language())
        key = command_help_key(path)
        if key in catalogue("en"):
            return say(key)
        return _cleaned(self.help)

    def format_usage(self, ctx, formatter):
        pieces = self.collect_usage_pieces(ctx)
        prefix = say("cli.usage")
        formatter.write_usage(
            ctx.command_path, " ".join(pieces), prefix=prefix if prefix.endswith("：") else prefix + " "
        )

    def format_help_text(self, ctx, formatter):
        text = self.localised_help(command_path(ctx))
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)

    def format_options(self, ctx, formatter):
        path = command_path(ctx)
        rows = [_option_record(p, ctx, path) for p in self.get_params(ctx) if isinstance(p, click.Option)]
        rows = [r for r in rows if r is not None]
        if rows:
            with section(formatter, say("cli.options")):
                formatter.write_dl(rows)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)

    def format_commands(self, ctx, formatter):
        path = command_path(ctx)
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, cmd) for name, cmd in commands if cmd is not None and not cmd.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        rows = []
        for name, cmd in commands:
            text = cmd.localised_help((*path, name)) if isinstance(cmd, CatalogueHelp) else _cleaned(cmd.help)
            rows.append((name, _short(text, limit)))
        with section(formatter, say("cli.commands")):
            formatter.write_dl(rows)


def option_name(param: click.Option, ctx: click.Context) -> str:
    """Return the name `param`'s help is keyed by: its Python name; `help` for click's -h/--help."""
    return "help" if set(param.opts) & set(ctx.help_option_names) else param.name


def option_help(param: click.Option, ctx: click.Context, path: tuple[str, ...]) -> str:
    """Return option `param`'s help in the CLI's language (its `help=` where the catalogue has none)."""
    key = option_help_key(path, option_name(param, ctx))
    return say(key) if key else (param.help or "")


def _option_record(param: click.Option, ctx: click.Context, path: tuple[str, ...]) -> tuple[str, str] | None:
    record = param.get_help_record(ctx)
    if record is None:
        return None
    text = option_help(param, ctx, path)
    extra = param.get_help_extra(ctx)
    items = []
    if "default" in extra:
        items.append(say("cli.default", value=extra["default"]))
    if "range" in extra:
        items.append(extra["range"])
    if "required" in extra:
        items.append(say("cli.required"))
    if items:
        joined = "; ".join(items)
        text = f"{text}  [{joined}]" if text else f"[{joined}]"
    return record[0], text


class GridkitCommand(CatalogueHelp, click.Command):
    """A gridkit command: its help in the CLI's language."""


class CatalogueGroup(CatalogueHelp, click.Group):
    """A click group whose help, and whose commands' help, is in the CLI's language."""

    command_class = GridkitCommand
    group_class = type
