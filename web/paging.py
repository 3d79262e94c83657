"""Pages of a long list: which page was asked for (`?page=`), and the pager a template draws.

A list page asks `page_request()` for (page, offset), runs its gridkit query with that offset and
PAGE_SIZE, then passes `pager(total, page)` to the `pager` macro of templates/_pager.html.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, request

from web.params import int_arg

PAGE_SIZE = 25
MAX_PAGE_NUMBER = 100_000


def page_request(size: int = PAGE_SIZE) -> tuple[int, int]:
    """Return (page number from 1, offset of its first row) of `?page=`."""
    page = int_arg("page", low=1, high=MAX_PAGE_NUMBER) or 1
    return page, (page - 1) * size


def pager(total: int, page: int, size: int = PAGE_SIZE) -> dict:
    """Return {page, pages, total, first, last}: the page shown and the rows it holds (1-based, inclusive)."""
    pages = max(1, -(-total // size))
    first = min(total, (page - 1) * size + 1)
    return {"page": page, "pages": pages, "total": total, "first": first, "last": min(total, page * size)}


def page_url(page: int) -> str:
    """Return the current URL with `?page=` set to `page` (the other parameters kept)."""
    return query_url(page=page)


def sort_url(sort: str) -> str:
    """Return the current URL sorted by `sort`, from its first page."""
    return query_url(sort=sort, page=None)


def query_url(**changes) -> str:
    """Return the current URL with the parameters in `changes` set (None: removed), the others kept."""
    args = request.args.to_dict(flat=False)
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = [str(value)]
    return request.script_root + request.path + "?" + urlencode(args, doseq=True)


def init_app(app: Flask) -> None:
    """Give templates `page_url` and `sort_url`."""
    app.jinja_env.globals.update(page_url=page_url, sort_url=sort_url)
