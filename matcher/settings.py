"""The service's one typed settings object, read from ``MATCHER_*`` environment variables at the
edges (the command line and the app factory) and passed inward; the library reads none.

=============================  =================================================================
MATCHER_CATALOGUE              catalogue file, ORUK feed, or a folder whose ``current`` names a
                               version (``matcher pull``); default: the bundled demo catalogue
MATCHER_MODEL_DIR              model folder or models root, watched for changes; default: the
                               model shipped with the package; ``cold-start``: the transparent
                               cold-start scorer, never reloaded (a folder of that name:
                               ``./cold-start``)
MATCHER_DATABASE_URL           referral store; ``sqlite:///PATH`` or
                               ``postgresql+psycopg://USER@HOST:PORT/DB``; default: an SQLite
                               file in the instance folder, created on first start
MATCHER_INSTANCE               folder for the default SQLite store and catalogue snapshots;
                               default: ``instance`` in the working folder
MATCHER_API_KEYS               deprecated: comma-separated bootstrap keys for ``/v1``
                               (``Authorization: Bearer KEY``), each with every scope; use
                               ``matcher keys create`` (keys with scopes, revocable one by one)
MATCHER_MAX_BODY               largest request body in bytes (default 1 MB)
MATCHER_MODEL_CHECK_SECONDS    how often a worker looks for a new model or catalogue (default 5)
MATCHER_QUEUE_TIMEOUT          seconds a request may wait for a worker before it gets 503
                               (default 3)
MATCHER_RELOAD_ON_SIGHUP       reload model and catalogue on SIGHUP (default true)
MATCHER_SECRET_KEY             signs the page's session cookies; the same on every replica;
                               required once accounts exist (else one per process, with a warning)
MATCHER_SESSION_IDLE_MINUTES   a page session ends after this long without a request (default 30)
MATCHER_TRUSTED_HOSTS          comma-separated host names the service answers to (Flask's
                               TRUSTED_HOSTS; ``.example.org`` takes its subdomains); default:
                               loopback names only while the service runs open, else any
MATCHER_BEHIND_TLS             behind a TLS-terminating proxy: Secure cookies, and the client
                               address from the proxy's X-Forwarded-For (default false)
MATCHER_RETENTION_DAYS         referrals older than this are purged (daily by ``matcher
                               serve``, or by ``matcher purge``); default 730
MATCHER_FOLLOWUP_WEEKS         weeks after a referral when a follow-up is due, as a JSON list
                               (the caseload page); default ``[2, 6]``
=============================  =================================================================
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import InvalidInput

__all__ = ["Settings", "demo_catalogue_path", "load_settings", "normalise_database_url"]


def demo_catalogue_path() -> Path:
    """The bundled demo catalogue (350 synthetic activities around Leeds), package data."""
    return Path(str(files("matcher") / "data" / "demo_catalogue.json"))


def normalise_database_url(url: str) -> str:
    """A plain ``postgresql://`` URL means psycopg 3, as ``postgresql+psycopg://`` does."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """Everything the service and the command line can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="MATCHER_", extra="ignore", hide_input_in_errors=True, frozen=True
    )

    catalogue: str | None = None
    model_dir: str | None = None
    database_url: str | None = None
    instance: Path = Path("instance")
    api_keys: SecretStr = SecretStr("")
    max_body: int = Field(1_000_000, gt=0)
    model_check_seconds: float = Field(5.0, ge=0, allow_inf_nan=False)
    queue_timeout: float = Field(3.0, gt=0, allow_inf_nan=False)
    reload_on_sighup: bool = True
    secret_key: SecretStr = SecretStr("")
    session_idle_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60, allow_inf_nan=False)
    trusted_hosts: str = ""
    behind_tls: bool = False
    retention_days: int = Field(730, ge=1, le=36_500)
    followup_weeks: tuple[int, ...] = (2, 6)

    @field_validator("catalogue", "model_dir", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("followup_weeks")
    @classmethod
    def _weeks(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 1 <= w <= 104 for w in value):
            raise ValueError("expected whole numbers of weeks from 1 to 104, at least one")
        return tuple(sorted(set(value)))

    def keys(self) -> list[str]:
        """The API keys, one per comma-separated entry."""
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    def catalogue_source(self) -> Path:
        """The configured catalogue (file or pulled folder), else the bundled demo catalogue."""
        return Path(self.catalogue) if self.catalogue else demo_catalogue_path()

    def store_url(self) -> str:
        """The referral store's URL: the one configured, else SQLite in the instance folder."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.instance.resolve() / 'matcher.sqlite3'}"


def load_settings(**overrides: Any) -> Settings:
    """``MATCHER_*`` environment variables, then ``overrides`` (field names, e.g.
    ``max_body=500``); a bad value is an :class:`InvalidInput` naming the variable, never the
    value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [
            ("MATCHER_" + str(e["loc"][0]).upper() if e["loc"] else "settings", e["msg"])
            for e in exc.errors(include_input=False, include_url=False)
        ]
        raise InvalidInput(problems) from None
