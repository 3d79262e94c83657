"""Optional single sign-on with the city's OpenID Connect identity provider (Authlib).

Configured by GRIDKIT_OIDC_ISSUER, GRIDKIT_OIDC_CLIENT_ID and GRIDKIT_OIDC_CLIENT_SECRET; off
(and the sign-in page shows no button) while any of them is unset. The id_token is verified
against the provider's JWKS (signature, issuer, audience, expiry, nonce); its claim
GRIDKIT_OIDC_USER_CLAIM (default preferred_username) names an existing, active gridkit user.
An unknown name gets 403: users are never created by signing in. Local passwords stay.
"""

from __future__ import annotations

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, redirect, request, session, url_for
from joserfc.errors import JoseError
from requests.exceptions import RequestException
from sqlalchemy import select

from gridkit.config import Settings
from gridkit.errors import NotFound, PermissionDenied, SetupError, ValidationError
from gridkit.models import User
from web.auth import _safe_next as safe_next
from web.auth import home_of
from web.database import db_session

bp = Blueprint("oidc", __name__, url_prefix="/login/oidc")

_NEXT = "oidc_next"


def oidc_enabled(settings: Settings) -> bool:
    """True when single sign-on is configured (issuer, client id and secret all set)."""
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret)


def init_app(app: Flask) -> None:
    """Register the provider's client when single sign-on is configured; tell templates whether it is."""
    settings: Settings = app.config["GRIDKIT_SETTINGS"]
    enabled = oidc_enabled(settings)
    app.jinja_env.globals["oidc_enabled"] = enabled
    if not enabled:
        return
    oauth = OAuth(app)
    # The discovery document is fetched on first use, not here: the app starts while the
    # provider is down, and the sign-in button then answers with advice.
    oauth.register(
        "city",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile", "timeout": 10},
    )
    app.extensions["gridkit_oidc"] = oauth.city


def _client():
    client = current_app.extensions.get("gridkit_oidc")
    if client is None:
        raise NotFound("oidc.not_configured")
    return client


@bp.get("")
def login():
    """Send the browser to the identity provider; it comes back to /login/oidc/callback."""
    client = _client()
    session[_NEXT] = safe_next(request.args.get("next"))
    try:
        return client.authorize_redirect(url_for("oidc.callback", _external=True))
    except RequestException as exc:
        raise SetupError("oidc.provider_unreachable", issuer=_issuer(), reason=type(exc).__name__) from None


@bp.get("/callback")
def callback():
    """Check the provider's answer, sign the matching gridkit user in, and go on."""
    client = _client()
    if "error" in request.args:
        raise ValidationError("oidc.failed", reason=request.args.get("error", "")[:100])
    try:
        token = client.authorize_access_token()
    except AuthlibBaseError as exc:
        raise ValidationError("oidc.failed", reason=str(exc.error or exc)[:200]) from None
    except JoseError as exc:  # the id_token: signature, issuer, audience, expiry, nonce
        raise ValidationError("oidc.failed", reason=f"id_token: {exc.error}"[:200]) from None
    except RequestException as exc:
        raise SetupError("oidc.provider_unreachable", issuer=_issuer(), reason=type(exc).__name__) from None
    claims = token.get("userinfo") or {}
    claim = current_app.config["GRIDKIT_SETTINGS"].oidc_user_claim
    name = claims.get(claim)
    if not isinstance(name, str) or not name.strip():
        raise PermissionDenied("oidc.no_claim", claim=claim)
    user = db_session().scalar(select(User).where(User.name == name.strip(), User.active.is_(True)))
    if user is None:
        raise PermissionDenied("oidc.unknown_user", name=name.strip()[:50])
    next_ = session.get(_NEXT)
    session.clear()  # a fresh session: no fixation of a pre-login session
    session["user_id"] = user.id
    session["generation"] = user.session_generation  # sign-out ends the session server-side
    return redirect(next_ or home_of(user))


def _issuer() -> str:
    return current_app.config["GRIDKIT_SETTINGS"].oidc_issuer or ""
