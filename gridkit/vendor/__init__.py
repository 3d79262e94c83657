"""Third-party browser assets packaged with gridkit: Leaflet 1.9.4 (BSD 2-Clause, see leaflet/LICENSE).

One copy serves both the web app (web/vendor.py serves it at /static/vendor/leaflet/) and the
generation preview (`gridkit.grids.generate.preview`), which inlines it so the page works offline.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

LEAFLET_DIR = Path(__file__).resolve().parent / "leaflet"


@cache
def leaflet_inline() -> tuple[str, str]:
    """Return (CSS, JS) of Leaflet for inlining into one HTML file: the CSS's images as data: URLs."""
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")

    def data_url(match: re.Match) -> str:
        image = LEAFLET_DIR / match.group(1)
        return f"url(data:image/png;base64,{base64.b64encode(image.read_bytes()).decode('ascii')})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", data_url, css)
    js = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    return css, js
