"""The `gridkit serve` command: the web application."""

from __future__ import annotations

import socket

import click

from gridkit import db
from gridkit.cli import with_settings
from gridkit.config import Settings
from gridkit.errors import SetupError


def check_port_free(host: str, port: int) -> None:
    """Raise SetupError if nothing can listen on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SetupError(f"cannot listen on {host}:{port} ({exc.strerror}): stop the program using "
                             "that port, or choose another with --port or GRIDKIT_PORT.")


def serve_app(settings: Settings, host: str | None, port: int | None) -> None:
    host = host or settings.host
    port = port or settings.port
    check_port_free(host, port)
    from web import create_app

    app = create_app(settings)
    click.echo(f"gridkit is serving on http://{host}:{port}/  (Ctrl+C stops it)")
    # waitress: a production WSGI server (threads, no debug reloader), pure Python.
    from waitress import serve as waitress_serve

    waitress_serve(app, host=host, port=port, threads=8, ident="gridkit", _quiet=True)


@click.command("serve")
@click.option("--host", help="Address to bind (default GRIDKIT_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GRIDKIT_PORT, 5000).")
@with_settings
def serve(settings, host, port):
    """Serve the web application."""
    check_port_free(host or settings.host, port or settings.port)
    db.engine_for(settings)
    serve_app(settings, host, port)
