"""The production server: waitress, as `gridkit serve` runs it.

`gridkit serve` and the web benchmarks start the application through `serve`, so what is measured
is what runs.
"""

from __future__ import annotations

from waitress import serve as waitress_serve

from web.api import warm_whois

THREADS = 8


def serve(app, host: str, port: int) -> None:
    """Serve `app` on host:port until interrupted (waitress: threads, no debug reloader, pure Python);
    the whois answers are loaded in the background meanwhile."""
    warm_whois(app)
    waitress_serve(app, host=host, port=port, threads=THREADS, ident="gridkit", _quiet=True)
