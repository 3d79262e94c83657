"""The `gridkit` command: the root group, the lazy loader of the nouns, and helpers they share.

Each noun lives in its own module (`gridkit/cli/<noun>.py`), imported only when its command runs
(as kart's MODULE_COMMANDS). A command parses, calls one gridkit service, and returns an
`output.Result`; it owns its transaction.
"""

from __future__ import annotations

import getpass
import importlib
import os
import sys
from functools import wraps

import click

from gridkit.cli.language import (
    Aborted,
    CatalogueGroup,
    Failure,
    GridkitCommand,
    Unexpected,
    cli_language,
    say,
    set_language,
)
from gridkit.config import Settings
from gridkit.errors import GridkitError, ValidationError
from gridkit.rules import use_time_zone

__all__ = ["GridkitCommand", "GridkitGroup", "LazyGroup", "cli_language", "main", "say"]

# Nouns whose commands live in their own module, imported only when that command runs. Each
# module defines a click command or group named like the noun (a trailing underscore where the
# noun is a Python keyword or would shadow a module: `import_`, `db_`).
MODULE_COMMANDS: dict[str, str] = {
    "settings": "gridkit.cli.settings",
    "db": "gridkit.cli.db",
    "admin": "gridkit.cli.admin",
    "basegrid": "gridkit.cli.basegrid",
    "dept": "gridkit.cli.dept",
    "workgrid": "gridkit.cli.workgrid",
    "coordinator": "gridkit.cli.coordinator",
    "whois": "gridkit.cli.whois",
    "assign": "gridkit.cli.assign",
    "subjects": "gridkit.cli.subjects",
    "import": "gridkit.cli.import_",
    "user": "gridkit.cli.user",
    "serve": "gridkit.cli.serve",
    "demo": "gridkit.cli.demo",
    "incident": "gridkit.cli.incident",
    "calendar": "gridkit.cli.calendar_",
    "export": "gridkit.cli.export",
    "report": "gridkit.cli.report",
    "reports": "gridkit.cli.reports",
}


class GridkitGroup(CatalogueGroup):
    """A click group that turns GridkitError into one line on stderr and exit status 1; help in the CLI's language."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GridkitError as exc:
            raise Failure(exc.render(cli_language())) from None
        except click.Abort:  # click would say "Aborted!" in English
            raise Aborted() from None
        except (KeyboardInterrupt, EOFError):
            click.echo(err=True)  # closes the terminal's ^C echo, as click does
            raise Aborted() from None
        except BrokenPipeError:
            # The reader of the output went away (`gridkit report population | head`): stop quietly as
            # Unix tools do, with 128 + SIGPIPE; not a fault of gridkit's.
            _silence_stdout()
            raise click.exceptions.Exit(141) from None
        except (click.ClickException, click.exceptions.Exit):
            raise
        except Exception as exc:
            # A bug: its traceback is shown, but a database error's DETAIL quotes the whole row it refused.
            raise Unexpected(exc) from None

    def list_commands(self, ctx):
        return list(self.commands)


class LazyGroup(GridkitGroup):
    """The top-level group: nouns in MODULE_COMMANDS are imported when first used."""

    def list_commands(self, ctx):
        return list(self.commands) + [name for name in MODULE_COMMANDS if name not in self.commands]

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in MODULE_COMMANDS:
            module = importlib.import_module(MODULE_COMMANDS[name])
            attr = name.replace("-", "_")
            command = getattr(module, attr + "_", None) or getattr(module, attr)
            self.add_command(command, name)
        return command


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that nothing more (the interpreter's last flush at exit)
    is written to a pipe whose reader has gone."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind it (a test runner's buffer)
        pass


def _settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings.from_env()
        use_time_zone(root.obj.time_zone)
    return root.obj


def with_settings(func):
    """Pass the Settings built from the environment as the first argument."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        return func(_settings(click.get_current_context()), *args, **kwargs)

    return wrapper


def actor() -> str:
    """Return who runs this command, for history and audit rows."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def as_option(dest: str = "as_user"):
    """The option `--as USERNAME` (default GRIDKIT_USER): the gridkit user a command acts as, whose role and area
    are checked; its help is the catalogue's `cli.option.<dest>`."""
    return click.option(
        "--as",
        dest,
        envvar="GRIDKIT_USER",
        metavar="USERNAME",
        help="Act as this gridkit user, whose role and area are checked (default: GRIDKIT_USER).",
    )


def personal_argument(
    value: str | None,
    *,
    prompt: str = "cli.subjects.key_prompt",
    visible: str | None = "cli.subjects.id_on_command_line",
    missing: str = "whois.key_missing",
) -> str:
    """Return a phone or citizen ID number given to a command, read where no other user sees it.

    '-' reads the first line of standard input (scripts), None asks for it without echo (message
    `prompt`); a value typed on the command line is taken as given, but it was shown to every user of
    the machine (ps) and kept in the shell's history: said on stderr (message `visible`, None: the value
    is not personal, e.g. a building code). Empty: ValidationError `missing`."""
    if value == "-":
        value = sys.stdin.readline().strip()
    elif value is None:
        value = click.prompt(say(prompt), hide_input=True, err=True).strip()
    elif visible is not None:
        click.echo(say(visible), err=True)
    if not value:
        raise ValidationError(missing)
    return value


def file_options(func):
    """Options shared by every command that reads a vector file."""
    for option in reversed(
        [
            click.option(
                "--encoding", help="Text encoding of the attributes (default: .cpg, else UTF-8, else GB18030)."
            ),
            click.option("--src-crs", help="CRS of a file that has none: EPSG code, PROJ string, WKT or gcj02."),
            click.option("--layer", help="Layer of a GeoPackage, or the shapefile inside a folder/zip."),
        ]
    ):
        func = option(func)
    return func


def codes_list(text: str) -> list[str]:
    """Return the comma-separated codes in `text`, stripped, empty ones dropped."""
    return [c.strip() for c in text.split(",") if c.strip()]


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    """Print gridkit's version in the CLI's language and exit (click's own says it in English)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(say("cli.version", version=version("gridkit")))
    ctx.exit()


KIND_CHOICE = click.Choice(["buildings", "residents", "entities", "incidents"])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "--lang",
    metavar="zh-CN|en",
    is_eager=True,
    expose_value=False,
    callback=set_language,
    help="Language of messages and help (default: GRIDKIT_LANG, else zh-CN).",
)
@click.pass_context
def main(ctx):
    """gridkit: the unified spatial base grid and departmental work grids for city grid management.

    \b
    Settings come from GRIDKIT_* environment variables (see `gridkit settings`).
    Without GRIDKIT_DATABASE_URL gridkit runs its own PostGIS under GRIDKIT_HOME.
    """
    ctx.call_on_close(_close_databases)
    try:
        if not isinstance(ctx.obj, Settings):
            ctx.obj = Settings.from_env()
    except GridkitError as exc:
        raise Failure(exc.render(cli_language())) from None
    use_time_zone(ctx.obj.time_zone)


def _close_databases() -> None:
    # The command is over (done or refused): close the pooled connections it opened, instead of
    # leaving them to the interpreter's exit (a ResourceWarning per connection under -X dev).
    # Only if a command loaded the database layer: `--help` and `settings` never import it.
    loaded = sys.modules.get("gridkit.db")
    if loaded is not None:
        loaded.dispose_engines()


if __name__ == "__main__":
    main()
