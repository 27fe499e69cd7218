"""Every setting, parsed strictly from the environment.

`load_config()` is called by `create_app()`, never at import time. A bad value
raises `ConfigError` naming the variable, so a typo stops start-up instead of
surfacing later as odd behaviour. Secrets can also come from a file named by
`<NAME>_FILE` (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from croniter import croniter

from webapp.delivery.addresses import parse_networks

DEFAULT_RETRY_DELAYS = (60, 600, 6000)


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed; the message names the variable."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    """The value of `name`, or the content of the file named by `name_FILE`."""
    value = env.get(name)
    if value is not None and value.strip() != "":
        return value.strip()
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc}") from exc
    return None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


#: The longest retention accepted, in days (100 years): anything longer is "keep".
MAX_RETENTION_DAYS = 36500


def _retention_days(env: Mapping[str, str], name: str) -> int | None:
    """Days to keep data for (docs/deploy.md, "Retention"); unset or empty: None, keep all."""
    raw = _get(env, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a whole number of days, not {raw!r}"
            " (leave it unset to keep everything)"
        ) from None
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise ConfigError(
            f"{name} must be between 1 and {MAX_RETENTION_DAYS} days, not {value}"
            " (leave it unset to keep everything)"
        )
    return value


def parse_retry_delays(raw: str) -> tuple[float, ...]:
    """`"60,600,6000"` -> (60.0, 600.0, 6000.0); exactly three non-negative numbers."""
    parts = [p.strip() for p in raw.split(",")]
    try:
        delays = tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"RETRY_DELAYS must be three comma-separated numbers of seconds, not {raw!r}"
        ) from None
    if len(delays) != 3 or any(d < 0 for d in delays):
        raise ConfigError(
            f"RETRY_DELAYS must be three non-negative numbers of seconds, not {raw!r}"
        )
    return delays


def database_url(raw: str | None, instance_path: str) -> str:
    """Normalise DATABASE_URL for SQLAlchemy; default: SQLite in the instance folder."""
    if raw is None:
        return "sqlite:///" + os.path.join(instance_path, "formhooks.sqlite3")
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    if not raw.startswith(("sqlite:", "postgresql+psycopg://")):
        raise ConfigError(
            "DATABASE_URL must start with postgres://, postgresql:// or sqlite:///, "
            f"not {raw.split(':', 1)[0]!r}"
        )
    return raw


def _redis_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return raw


# No "optional": for a client, Python's ssl treats it exactly as "required".
REDIS_SSL_CERT_REQS = ("required", "none")
LOG_FORMATS = ("text", "json")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default), compared in lower case."""
    raw = _get(env, name)
    if raw is None:
        return choices[0]
    if raw.lower() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw.lower()


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = _get(env, "METRICS_TOKEN")
    if token is not None and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters long")
    return token


def _secret_key(env: Mapping[str, str], instance_path: str, production: bool) -> str:
    key = _get(env, "SECRET_KEY")
    if key:
        if len(key) < 16:
            raise ConfigError("SECRET_KEY must be at least 16 characters long")
        return key
    if production:
        raise ConfigError(
            "SECRET_KEY is required in production (FLASK_ENV/FORMHOOKS_ENV=production)"
        )
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _pool_sizes(env: Mapping[str, str]) -> dict[str, int]:
    """SQLAlchemy's pool_size and max_overflow, for those of the two that are set."""
    sizes = {}
    if _get(env, "DATABASE_POOL_SIZE") is not None:
        sizes["pool_size"] = _int(env, "DATABASE_POOL_SIZE", 0, minimum=1)
    if _get(env, "DATABASE_MAX_OVERFLOW") is not None:
        sizes["max_overflow"] = _int(env, "DATABASE_MAX_OVERFLOW", 0, minimum=0)
    return sizes


def load_config(env: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Parse the environment into Flask config keys. Raises ConfigError."""
    production = (_get(env, "FORMHOOKS_ENV") or "development") == "production"
    cron = _get(env, "FAILURE_REPORT_CRON") or "0 * * * *"
    if not croniter.is_valid(cron):
        raise ConfigError(f"FAILURE_REPORT_CRON is not a valid cron expression: {cron!r}")
    try:
        allowed = parse_networks(_get(env, "SSRF_ALLOWED_NETWORKS") or "")
    except ValueError as exc:
        raise ConfigError(f"SSRF_ALLOWED_NETWORKS: {exc}") from None
    base_url = _get(env, "BASE_URL")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError("BASE_URL must start with http:// or https://")
    mail_port = _int(env, "MAIL_PORT", 25, minimum=1)
    pools = _pool_sizes(env)
    config: dict[str, Any] = {
        "FORMHOOKS_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(env, instance_path, production),
        "ENCRYPTION_KEY": _get(env, "ENCRYPTION_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url(_get(env, "DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, **pools},
        # Every pool of a process (the panel's and the webhook's), when set:
        # README, "Database connections".
        "DATABASE_POOL_SIZE": pools.get("pool_size"),
        "DATABASE_MAX_OVERFLOW": pools.get("max_overflow"),
        "REDIS_URL": _redis_url(_get(env, "REDIS_URL")),
        # Certificate check of rediss:// URLs (docs/deploy.md, "Redis over TLS").
        "REDIS_SSL_CERT_REQS": _choice(env, "REDIS_SSL_CERT_REQS", REDIS_SSL_CERT_REQS),
        "METRICS_TOKEN": _metrics_token(env),
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", LOG_FORMATS),
        "PORT": _int(env, "PORT", 5000, minimum=1),
        "BASE_URL": base_url.rstrip("/") if base_url else None,
        # Reverse proxies in front whose X-Forwarded-* headers are believed (webapp/proxies.py).
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0, minimum=0),
        "RETRY_DELAYS": parse_retry_delays(_get(env, "RETRY_DELAYS") or "60,600,6000"),
        "DELIVERY_TIMEOUT": _float(env, "DELIVERY_TIMEOUT", 30.0, minimum=0.1),
        "SSRF_ALLOWED_NETWORKS": allowed,
        "FAILURE_REPORT_CRON": cron,
        "MAX_SUBMISSION_BYTES": _int(env, "MAX_SUBMISSION_BYTES", 10 * 1024 * 1024, minimum=1),
        "BODY_READ_TIMEOUT": _float(env, "BODY_READ_TIMEOUT", 30.0, minimum=0.1),
        # How long a signed attachment link works (docs/attachments.md); a week by default.
        "ATTACHMENT_URL_TTL": _int(env, "ATTACHMENT_URL_TTL", 7 * 24 * 3600, minimum=60),
        "WORKER_CONCURRENCY": _int(env, "WORKER_CONCURRENCY", os.cpu_count() or 1, minimum=1),
        "SCHEDULER_INTERVAL": _float(env, "SCHEDULER_INTERVAL", 1.0, minimum=0.05),
        "SWEEP_INTERVAL": _int(env, "SWEEP_INTERVAL", 30, minimum=1),
        # Logs a backfill or replay makes per transaction (docs/backfill.md).
        "BULK_BATCH_SIZE": _int(env, "BULK_BATCH_SIZE", 500, minimum=1),
        "CENTRAL_POLL_INTERVAL": _int(env, "CENTRAL_POLL_INTERVAL", 60, minimum=1),
        # Retention (docs/deploy.md, "Retention"): None keeps everything.
        "SUBMISSION_RETENTION_DAYS": _retention_days(env, "SUBMISSION_RETENTION_DAYS"),
        "LOG_RETENTION_DAYS": _retention_days(env, "LOG_RETENTION_DAYS"),
        "MAIL_SERVER": _get(env, "MAIL_SERVER") or "localhost",
        "MAIL_PORT": mail_port,
        "MAIL_USE_TLS": _bool(env, "MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _bool(env, "MAIL_USE_SSL", False),
        "MAIL_USERNAME": _get(env, "MAIL_USERNAME"),
        "MAIL_PASSWORD": _get(env, "MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": _get(env, "MAIL_DEFAULT_SENDER") or "formhooks@localhost",
        "MAIL_CONFIGURED": _get(env, "MAIL_SERVER") is not None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "WTF_CSRF_TIME_LIMIT": None,
    }
    if config["MAIL_USE_TLS"] and config["MAIL_USE_SSL"]:
        raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL cannot both be true")
    return config
