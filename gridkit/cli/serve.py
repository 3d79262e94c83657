"""The `gridkit serve` command: the web application."""

from __future__ import annotations

import socket

import click

from gridkit import db
from gridkit.cli import GridkitCommand, output, say, with_settings
from gridkit.config import Settings
from gridkit.errors import SetupError
from web import create_app, server

HOST = click.option("--host", help="Address to bind (default GRIDKIT_HOST, 127.0.0.1).")
PORT = click.option("--port", type=int, help="Port (default GRIDKIT_PORT, 5000).")


def check_port_free(host: str, port: int) -> None:
    """Raise SetupError if nothing can listen on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SetupError("cli.serve.port_taken", host=host, port=port, reason=exc.strerror) from None


def serve_app(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the web application until Ctrl+C."""
    host = host or settings.host
    port = port or settings.port
    check_port_free(host, port)
    app = create_app(settings)
    output.write(output.Result(None, lines=[say("cli.serve.serving", url=f"http://{host}:{port}/")]), False)
    server.serve(app, host, port)


@click.command("serve", cls=GridkitCommand)
@HOST
@PORT
@with_settings
def serve(settings, host, port):
    """Serve the web application."""
    check_port_free(host or settings.host, port or settings.port)
    db.engine_for(settings)
    serve_app(settings, host, port)
