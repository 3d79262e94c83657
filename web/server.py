"""The production server: waitress, as `gridkit serve` runs it.

`gridkit serve` and the web benchmarks start the application through `serve`, so what is measured
is what runs.
"""

from __future__ import annotations

from waitress import create_server

from web.api import warm_whois
from web.bodies import SERVER_BYTES

THREADS = 8


def make_server(app, host: str, port: int):
    """Return the waitress server `gridkit serve` runs, bound to host:port (port 0: any free one) and not yet
    running: 8 threads, and bodies over SERVER_BYTES refused before they are read."""
    return create_server(
        app, host=host, port=port, threads=THREADS, ident="gridkit", max_request_body_size=SERVER_BYTES
    )


def serve(app, host: str, port: int) -> None:
    """Serve `app` on host:port until interrupted (waitress: threads, no debug reloader, pure Python);
    the whois answers are loaded in the background meanwhile."""
    warm_whois(app)
    make_server(app, host, port).run()
