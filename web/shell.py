"""The page shell: which workspaces the navigation offers to the signed-in user's role."""

from __future__ import annotations

from flask import Flask, current_app, request

from gridkit.admin import unit_name
from web.auth import current_user
from web.i18n import current_language, t

# (endpoint, label key, roles that see it); a workspace whose blueprint is not registered is left out.
WORKSPACE_LINKS = (
    ("coordinator.index", "nav.coordinator", ("coordinator",)),
    ("coordinator_cases.index", "nav.my_cases", ("coordinator",)),
    ("planner.index", "nav.planner", ("planner", "admin")),
    ("supervisor.index", "nav.supervisor", ("supervisor", "admin")),
    ("analyst.index", "nav.analyst", ("analyst", "admin")),
    ("admin.index", "nav.admin", ("admin",)),
)


def workspace_links() -> list[dict]:
    """Return [{endpoint, label, current}] of the workspaces the signed-in user may open."""
    user = current_user()
    if user is None:
        return []
    links = []
    for endpoint, label, roles in WORKSPACE_LINKS:
        if user.role in roles and endpoint in current_app.view_functions:
            blueprint = endpoint.split(".")[0]
            links.append({"endpoint": endpoint, "label": label, "current": request.blueprint == blueprint})
    return links


def app_title() -> str:
    """Return the pages' title with the city's name once the home page's counts know it (asks no database:
    an error page, the database down, renders it too)."""
    kept = current_app.extensions.get("gridkit_kept", {}).get("counts", {}).get("value") or {}
    # The city's name in the page's language: its English name in English, none rather than the Chinese one.
    city = unit_name(kept.get("city"), kept.get("city_en"), current_language())
    return t("app.title_city", city=city) if city else t("app.title")


def init_app(app: Flask) -> None:
    """Make `workspace_links()` and `app_title()` available to templates."""
    app.jinja_env.globals.update(workspace_links=workspace_links, app_title=app_title)
