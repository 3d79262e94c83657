"""Single sign-on against a throwaway OpenID Connect provider that the test starts on loopback:
discovery, authorize, token and JWKS endpoints, id_tokens signed with a key made here. The full
redirect flow runs over real HTTP between gridkit (Flask test client) and the provider."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from gridkit import db
from gridkit.config import Settings
from gridkit.users import add_user
from web import create_app

CLIENT_ID, CLIENT_SECRET = "gridkit", "s3cret-for-tests"
PASSWORD = "correct-horse-7"


class Provider:
    """A minimal OIDC provider: it signs in whoever `next_name` says, with claim `claim`."""

    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.signing_key = self.key
        self.next_name = "wang"
        self.claim = "preferred_username"
        self.codes: dict[str, dict] = {}
        self.app = self._make_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _make_app(self) -> Flask:
        app = Flask("test-oidc-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                }
            )

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [self.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize():
            args = request.args
            assert args["client_id"] == CLIENT_ID and args["response_type"] == "code"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": args.get("nonce"),
                "redirect_uri": args["redirect_uri"],
                "name": self.next_name,
            }
            return redirect(args["redirect_uri"] + "?" + urlencode({"code": code, "state": args["state"]}))

        @app.post("/token")
        def token():
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify({"error": "invalid_client"}), 401
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != request.form.get("redirect_uri"):
                return jsonify({"error": "invalid_grant"}), 400
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "sub": f"sub-{grant['name']}",
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                self.claim: grant["name"],
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.signing_key)
            return jsonify(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return app

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def provider():
    with Provider() as p:
        yield p


def sso_app(settings: Settings, issuer: str, **extra):
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        add_user(session, "wang", "planner", password=PASSWORD)
        add_user(session, "retired", "planner", password=PASSWORD)
        from gridkit.models import User

        session.query(User).filter(User.name == "retired").update({"active": False})
    app = create_app(
        Settings(
            **{
                **settings.__dict__,
                "oidc_issuer": issuer,
                "oidc_client_id": CLIENT_ID,
                "oidc_client_secret": CLIENT_SECRET,
                **extra,
            }
        )
    )
    app.config["TESTING"] = True
    return app


def sign_in(client, next_=None):
    """Run the redirect flow: gridkit → provider (real HTTP) → gridkit's callback. Return the callback's response."""
    start = client.get("/login/oidc" + (f"?next={next_}" if next_ else ""))
    assert start.status_code == 302
    to_provider = start.headers["Location"]
    assert to_provider.startswith(client.application.config["GRIDKIT_SETTINGS"].oidc_issuer + "/authorize?")
    back = requests.get(to_provider, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    parts = urlsplit(back.headers["Location"])
    assert parts.path == "/login/oidc/callback"
    return client.get(f"{parts.path}?{parts.query}", headers={"Accept-Language": "zh-CN"})


def test_sign_in_through_the_identity_provider(fresh_settings, provider):
    app = sso_app(fresh_settings, provider.issuer)
    client = app.test_client()
    page = client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert 'id="sso-login"' in page and "使用城市统一身份认证登录" in page
    done = sign_in(client, next_="/planner")
    assert done.status_code == 302 and done.headers["Location"].endswith("/planner")
    with client.session_transaction() as session:
        user_id = session["user_id"]
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        from gridkit.models import User

        assert session.get(User, user_id).name == "wang"
    assert client.get("/planner").status_code == 200


def test_an_unknown_or_inactive_user_is_refused_in_chinese(fresh_settings, provider):
    app = sso_app(fresh_settings, provider.issuer)
    for name in ("zhao", "retired"):
        provider.next_name = name
        client = app.test_client()
        refused = sign_in(client)
        assert refused.status_code == 403
        text = refused.get_data(as_text=True)
        assert f"身份认证服务确认您的身份为 &#39;{name}&#39;" in text or f"身份认证服务确认您的身份为 '{name}'" in text
        with client.session_transaction() as session:
            assert "user_id" not in session
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        from gridkit.models import User

        assert session.query(User).filter(User.name == "zhao").count() == 0  # never created


def test_the_user_claim_is_configurable(fresh_settings, provider):
    provider.claim = "employee_id"
    app = sso_app(fresh_settings, provider.issuer, oidc_user_claim="employee_id")
    assert sign_in(app.test_client()).status_code == 302
    # The default claim is missing from the provider's tokens: a clear refusal.
    other = create_app(Settings(**{**app.config["GRIDKIT_SETTINGS"].__dict__, "oidc_user_claim": "preferred_username"}))
    refused = sign_in(other.test_client())
    assert refused.status_code == 403 and "preferred_username" in refused.get_data(as_text=True)


def test_a_token_signed_with_another_key_is_refused(fresh_settings, provider):
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    app = sso_app(fresh_settings, provider.issuer)
    client = app.test_client()
    refused = sign_in(client)
    assert refused.status_code == 400
    assert "单点登录失败" in refused.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "user_id" not in session


def test_a_forged_callback_is_refused(fresh_settings, provider):
    app = sso_app(fresh_settings, provider.issuer)
    client = app.test_client()
    client.get("/login/oidc")
    forged = client.get("/login/oidc/callback?code=x&state=not-the-state", headers={"Accept-Language": "zh-CN"})
    assert forged.status_code == 400
    denied = client.get("/login/oidc/callback?error=access_denied", headers={"Accept-Language": "en"})
    assert denied.status_code == 400 and "access_denied" in denied.get_data(as_text=True)


def test_a_provider_that_is_down_gets_advice_not_a_crash(fresh_settings):
    app = sso_app(fresh_settings, "http://127.0.0.1:9")  # discard port: nothing listens
    response = app.test_client().get("/login/oidc", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 503
    assert "无法连接身份认证服务" in response.get_data(as_text=True)


def test_without_settings_there_is_no_sso(fresh_settings):
    app = create_app(fresh_settings)
    client = app.test_client()
    assert 'id="sso-login"' not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404


def test_settings_are_read_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "GRIDKIT_OIDC_ISSUER": "https://id.example.gov.cn/realms/city",
            "GRIDKIT_OIDC_CLIENT_ID": "gridkit",
            "GRIDKIT_OIDC_CLIENT_SECRET": "x",
            "GRIDKIT_HOME": str(tmp_path),
        }
    )
    assert settings.oidc_issuer == "https://id.example.gov.cn/realms/city"
    assert settings.oidc_user_claim == "preferred_username"
