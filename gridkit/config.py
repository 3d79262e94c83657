"""Settings read from GRIDKIT_* environment variables into a frozen dataclass."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridkit.errors import SetupError
from gridkit.messages import LANGUAGES
from gridkit.rules import DEFAULT_TIME_ZONE
from gridkit.standard.codes import PROFILES


def _setting(default, help_: str, env: str):
    return field(default=default, metadata={"help": help_, "env": env})


@dataclass(frozen=True)
class Settings:
    """Everything gridkit can be configured with; each field names its environment variable."""

    home: Path = _setting(
        Path("var"), "Directory for gridkit's own files: the embedded database, logs, keys, reports.", "GRIDKIT_HOME"
    )
    database_url: str | None = _setting(
        None,
        "SQLAlchemy URL of an existing PostgreSQL + PostGIS database. Unset: gridkit runs "
        "its own private cluster under GRIDKIT_HOME (the embedded default).",
        "GRIDKIT_DATABASE_URL",
    )
    pg_bin: Path | None = _setting(
        None,
        "Directory with PostgreSQL 15 server programs (initdb, pg_ctl). Unset: /usr/lib/postgresql/15/bin.",
        "GRIDKIT_PG_BIN",
    )
    pg_port: int = _setting(
        5432,
        "Port number of the embedded server. It listens only on a Unix socket under "
        "GRIDKIT_HOME, never on TCP; the number only names the socket.",
        "GRIDKIT_PG_PORT",
    )
    host: str = _setting("127.0.0.1", "Address the web server binds to.", "GRIDKIT_HOST")
    port: int = _setting(5000, "Port the web server listens on.", "GRIDKIT_PORT")
    lang: str = _setting("zh-CN", "Default interface language: zh-CN or en.", "GRIDKIT_LANG")
    time_zone: str = _setting(
        DEFAULT_TIME_ZONE,
        "The city's time zone (an IANA name such as Asia/Shanghai): naive times given by users mean its time, "
        "and the days of case codes, evaluations, reports and file names are its days. `gridkit db up` gives "
        "it to the database (whose evaluation rollup is then recounted by the new days).",
        "GRIDKIT_TIME_ZONE",
    )
    secret_key: str | None = _setting(
        None, "Key that signs web sessions. Unset: a random key kept in GRIDKIT_HOME/secret_key.", "GRIDKIT_SECRET_KEY"
    )
    secure_cookies: bool = _setting(
        False,
        "1: the session cookie is sent over HTTPS only (its Secure flag). Set it when users reach gridkit "
        "through HTTPS (a TLS proxy in front of waitress): the cookie then never travels in clear.",
        "GRIDKIT_SECURE_COOKIES",
    )
    pii_key: str | None = _setting(
        None,
        "Key for the keyed hash of citizen ID numbers. Unset: a random key kept in "
        "GRIDKIT_HOME/pii_key. Keep it: hashes made with another key do not match.",
        "GRIDKIT_PII_KEY",
    )
    export_max_features: int = _setting(
        5_000_000,
        "Most features one export may write (the analyst narrows larger ones by area or filter).",
        "GRIDKIT_EXPORT_MAX_FEATURES",
    )
    report_retention_days: int = _setting(
        90,
        "Days an import report is kept under GRIDKIT_HOME/reports (they quote the rows an import refused): older "
        "ones are removed when an import starts, and by `gridkit reports prune`.",
        "GRIDKIT_REPORT_RETENTION_DAYS",
    )
    open311_keys: str | None = _setting(
        None,
        "Open311 API keys of trusted sources, as name=key pairs separated by commas. A post "
        "with one of them is marked trusted and not rate-limited.",
        "GRIDKIT_OPEN311_KEYS",
    )
    open311_rate: int = _setting(
        20, "Open311 posts one network address may make per hour without an API key.", "GRIDKIT_OPEN311_RATE"
    )
    open311_rate_storage: str = _setting(
        "memory://",
        "Where the Open311 rate limit counts posts: memory:// keeps them in the process, shared by "
        "its threads (right for the shipped waitress server, one process); several processes need a "
        "shared store, e.g. redis://HOST:6379 (install the redis package) or memcached://HOST:11211.",
        "GRIDKIT_OPEN311_RATE_STORAGE",
    )
    trusted_proxies: int = _setting(
        0,
        "How many reverse proxies (a TLS proxy, a load balancer) stand in front of waitress. Their "
        "X-Forwarded-For and X-Forwarded-Proto are then trusted, so the Open311 rate limit and sign-in "
        "throttling count each client's own address, not the proxy's (which would hold every citizen "
        "to one count). 0: the headers are ignored, as anyone could forge them.",
        "GRIDKIT_TRUSTED_PROXIES",
    )
    code_profile: str = _setting(
        "default", "Code layout: default (15-digit base cells) or cjt213 (14-digit).", "GRIDKIT_CODE_PROFILE"
    )
    sliver_tolerance_m: float = _setting(
        0.05,
        "Width in metres below which overlaps, gaps and parts outside the parent between base cells "
        "or admin units are reprojection noise: snapped away on import and noted, not errors.",
        "GRIDKIT_SLIVER_TOLERANCE_M",
    )
    max_vertices: int = _setting(
        100_000,
        "Most vertices one feature of an imported vector file may have; a file with a larger "
        "feature is refused, naming it.",
        "GRIDKIT_MAX_VERTICES",
    )
    oidc_issuer: str | None = _setting(
        None,
        "Single sign-on: URL of the city's OpenID Connect identity provider (its discovery "
        "document is ISSUER/.well-known/openid-configuration). Unset: local passwords only.",
        "GRIDKIT_OIDC_ISSUER",
    )
    oidc_client_id: str | None = _setting(
        None, "Single sign-on: gridkit's client id at the identity provider.", "GRIDKIT_OIDC_CLIENT_ID"
    )
    oidc_client_secret: str | None = _setting(
        None, "Single sign-on: gridkit's client secret at the identity provider.", "GRIDKIT_OIDC_CLIENT_SECRET"
    )
    oidc_user_claim: str = _setting(
        "preferred_username",
        "Single sign-on: the id_token claim holding the gridkit user name (the user must exist; none is created).",
        "GRIDKIT_OIDC_USER_CLAIM",
    )

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> Settings:
        """Return settings from the environment, then `overrides`."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, f.default, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        return replace(settings, home=Path(settings.home).expanduser().absolute())

    @property
    def embedded(self) -> bool:
        """True when gridkit runs its own PostgreSQL cluster."""
        return not self.database_url


# The spellings of an on/off setting.
SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _convert(name: str, default, raw: str):
    if name in ("pg_port", "port"):
        try:
            value = int(raw)
        except ValueError:
            raise SetupError("config.not_a_port", variable=f"GRIDKIT_{name.upper()}", value=raw) from None
        if not 0 < value < 65536:
            raise SetupError("config.port_out_of_range", variable=f"GRIDKIT_{name.upper()}", value=raw)
        return value
    if name in ("sliver_tolerance_m", "max_vertices", "trusted_proxies"):
        kind = float if name == "sliver_tolerance_m" else int
        try:
            value = kind(raw)
        except ValueError:
            value = -1
        if not value >= 0:
            raise SetupError("config.not_non_negative", variable=f"GRIDKIT_{name.upper()}", value=raw)
        return value
    if name in ("export_max_features", "open311_rate", "report_retention_days"):
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise SetupError("config.not_positive_whole", variable=f"GRIDKIT_{name.upper()}", value=raw)
        return int(raw)
    if name == "secure_cookies":
        if raw.lower() not in SWITCH:
            raise SetupError("config.not_a_switch", variable=f"GRIDKIT_{name.upper()}", value=raw)
        return SWITCH[raw.lower()]
    if name in ("home", "pg_bin"):
        return Path(raw)
    if name == "code_profile" and raw not in PROFILES:
        raise SetupError("config.unknown_code_profile", value=raw, profiles=", ".join(PROFILES))
    if name == "time_zone":
        return valid_time_zone(raw)
    if name == "lang" and raw not in LANGUAGES:
        raise SetupError("config.unknown_language", value=raw, languages=", ".join(LANGUAGES))
    return raw


# An IANA zone's name: letters, digits, '_', '+', '-' in parts separated by '/' (also what SQL may quote).
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def valid_time_zone(raw: str) -> str:
    """Return `raw` if it names a time zone zoneinfo knows (GRIDKIT_TIME_ZONE), else raise SetupError."""
    value = raw.strip()
    try:
        if not _ZONE_NAME.fullmatch(value):
            raise ValueError(value)
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise SetupError("config.unknown_time_zone", variable="GRIDKIT_TIME_ZONE", value=raw) from None
    return value


def time_zone_from_env(environ: dict | None = None) -> ZoneInfo:
    """Return the city's time zone from GRIDKIT_TIME_ZONE (default Asia/Shanghai), validated."""
    raw = (os.environ if environ is None else environ).get("GRIDKIT_TIME_ZONE") or Settings.time_zone
    return ZoneInfo(valid_time_zone(raw))


def describe_settings() -> list[tuple[str, str | None, str]]:
    """Return (environment variable, default, help) for every setting, for README and --help.

    The default is written as one would set the variable (a switch as 0 or 1); None: unset by default."""
    return [(f.metadata["env"], _as_variable(f.default), f.metadata["help"]) for f in fields(Settings)]


def _as_variable(default) -> str | None:
    if default is None:
        return None
    if isinstance(default, bool):
        return "1" if default else "0"
    return str(default)
