"""Settings: every knob genyard reads, from ``GENYARD_*`` environment variables.

Nothing is built at import: :func:`load_settings` reads the environment when called.
The README's configuration table is generated from this class and a test keeps the
two in step (``tests/unit/test_docs.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from genyard.domain.ratelimits import DEFAULT_TIERS, parse_tiers


class Settings(BaseSettings):
    """genyard's configuration. Each field is one ``GENYARD_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="GENYARD_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description="Directory for the SQLite database (`genyard.db`), the generated "
        "secret key (`secret-key`) and the admin key file (`admin-key`).",
    )
    files_dir: Path | None = Field(
        default=None,
        description="Directory of the local blob store (stored files, served through signed "
        "URLs under `/v1/files`). Default: `<data dir>/files`.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file `genyard.db` in the data dir "
        "(`sqlite:///...`). PostgreSQL: `postgresql+asyncpg://...`.",
    )
    host: str = Field(default="127.0.0.1", description="Address `genyard serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `genyard serve` binds to.")
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the server at, used in links the API returns "
        "(`urls.get`, curl examples). Default: `http://<host>:<port>`.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Secret that signs file URLs (and, later, tokens). On SQLite, generated "
        "on first start and kept in `<data dir>/secret-key` when unset; required on "
        "PostgreSQL.",
    )
    signed_url_seconds: int = Field(
        default=3600,
        ge=1,
        description="How long a signed file URL (`/v1/files/<key>?expires=...&signature=...`) "
        "stays valid, in seconds.",
    )
    max_input_file_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        description="Largest file a file input takes (a data URI, an upload, a stored file or "
        "a fetched URL) when the model's `x-genyard-file` marker sets no `max_bytes`.",
    )
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest request body of `POST /v1/predictions/upload` (multipart, all "
        "files together); larger answers 413. Other routes use `GENYARD_MAX_BODY_BYTES`.",
    )
    files_retention_days: float = Field(
        default=0.0,
        ge=0,
        description="Delete stored files (inputs and outputs) this many days after they were "
        "stored; `0` keeps them forever. Processes that run workers sweep.",
    )
    files_sweep_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between sweeps for files past `GENYARD_FILES_RETENTION_DAYS`.",
    )
    worker_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="CPU cores the in-process workers may keep busy at once (threads per "
        "call x parallel calls, summed over engines). Default: the machine's core count.",
    )
    model_memory_mb: int = Field(
        default=4096,
        ge=1,
        description="Memory budget for loaded local models, in MB (each catalog entry's "
        "`limits.memory_mb`). Past it, the least recently used idle model is unloaded; a "
        "model in use is never unloaded.",
    )
    warm_models: str = Field(
        default="",
        description="Comma-separated model ids that `serve` and `worker` load when they "
        "start (in the background), so their first request does not wait for the load. "
        "Other models load on their first run.",
    )
    diagnostic_models: bool = Field(
        default=False,
        description="Enable the `genyard/diagnostic` model (modes echo, files, sleep, "
        "progress, stream, fail, crash) for tests and benchmarks. `crash` kills the worker "
        "process (under `genyard serve`, the whole server).",
    )
    catalog_dir: Path | None = Field(
        default=None,
        description="Extra directory of model definition files (`*.toml`), added to and "
        "overriding the bundled catalog.",
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a worker's claim on a job lasts without a heartbeat; "
        "heartbeats renew it every third of this.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a job is started before a lost worker fails it with `worker_lost`.",
    )
    reaper_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between reaper passes (expired leases, queue timeouts).",
    )
    poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds an idle worker waits before looking for work again when no "
        "submit wakes it.",
    )
    shutdown_grace: float = Field(
        default=10.0,
        ge=0,
        description="Seconds a stopping server lets running jobs finish before it hands "
        "them back to the queue (without spending an attempt).",
    )
    max_pending_per_account: int = Field(
        default=1000,
        ge=1,
        description="Pending predictions one account may have; more answer 429.",
    )
    billing: bool = Field(
        default=True,
        description="Charge credits: hold a prediction's estimated cost at submit (402 when "
        "short), charge the real cost at the end (`off` for private installs: usage is still "
        "recorded, nothing is held or charged).",
    )
    signup_bonus_credits: float = Field(
        default=10.0,
        ge=0,
        description="Free credits every new user starts with (a `signup_bonus` ledger row).",
    )
    daily_bonus_credits: float = Field(
        default=1.0,
        ge=0,
        description="Free credits the daily bonus grants, once per UTC day, to a user who "
        "claims it (`POST /v1/credits/bonus`, a `daily_bonus` ledger row); `0` turns it off.",
    )
    weekly_bonus_credits: float = Field(
        default=5.0,
        ge=0,
        description="Free credits the weekly bonus grants, once per ISO week (from Monday "
        "00:00 UTC), to a user who claims it (a `weekly_bonus` ledger row); `0` turns it off.",
    )
    free_credits_max: float = Field(
        default=50.0,
        ge=0,
        description="The most free credits the daily and weekly bonuses fill the `free` "
        "bucket to (the balance's `max`): a claim tops it up to this at most, and grants "
        "nothing while the bucket is there. `0`: no cap. The signup bonus and admin grants "
        "are not capped.",
    )
    admin_initial_credits: float = Field(
        default=1000.0,
        ge=0,
        description="Credits the first admin (created on an empty database) starts with, "
        "so a fresh install can try every model (a `purchase` ledger row).",
    )
    rate_limits: bool = Field(
        default=True,
        description="Count requests against the tiers' rate limits (`off` for private "
        "installs: no counting, no `X-RateLimit-*` headers, no 429 but the pending cap's).",
    )
    rate_limit_tiers: str = Field(
        default=DEFAULT_TIERS,
        description="Requests per minute/hour/day of each tier, counted per API key: "
        "`tier=minute/hour/day` joined by `;`, every tier named. Polling one's own "
        "prediction counts apart, at 10 times these.",
    )
    rate_limit_anonymous: int = Field(
        default=15,
        ge=1,
        description="Requests per minute one client IP may make without a valid API key.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL (`redis://host:6379/0`). When set, rate-limit counters live "
        "there, shared by every API process; else each process counts in its own memory.",
    )
    max_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Upper bound for `Prefer: wait=N` on the native API.",
    )
    llm_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long the OpenAI, Anthropic and Gemini faces wait for a "
        "non-streaming answer; past it they answer 504 and cancel the job (its hold is "
        "released). 600 s is the OpenAI SDK's own default timeout.",
    )
    simple_api_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Execution limit of the simple `/api` face's routes whose seed names "
        "none (chat, embedding, rerank, stt, t2m, t2i); past it they answer 504 and cancel "
        "the job. `/api/tts` (58 s), `/api/voice-clone` (60 s) and `/api/image2text` (115 s) "
        "keep the seed's limits, or this setting's value when it is lower.",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (except uploads, see "
        "`GENYARD_MAX_UPLOAD_BYTES`); larger answers 413.",
    )
    outbound_allowlist: str = Field(
        default="",
        description="Comma-separated IP addresses and CIDR networks that outbound fetches "
        "(webhooks, input file URLs, remote providers) may reach although they are private, "
        "loopback, link-local or otherwise refused, e.g. `10.0.0.0/8,127.0.0.1`.",
    )
    outbound_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of extra CA certificates trusted for outbound HTTPS "
        "(private servers), added to the public ones.",
    )
    outbound_https_only: bool = Field(
        default=False,
        description="Refuse plain `http://` URLs for outbound fetches and webhooks.",
    )
    outbound_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        description="Largest response body an outbound fetch reads (after decoding); larger fails.",
    )
    outbound_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one outbound fetch may take in all: resolution, redirects "
        "and the body.",
    )
    webhook_retry_delays: str = Field(
        default="1,2,4",
        pattern=r"^\s*(\d+(\.\d+)?\s*(,\s*\d+(\.\d+)?\s*)*)?$",
        description="Seconds to wait before each retry of a webhook delivery that did not "
        "get a 2xx answer, comma-separated (`1,2,4`: four attempts in all; empty: one).",
    )
    webhook_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one webhook delivery attempt may take; longer counts as failed.",
    )
    webhook_logs_interval: float = Field(
        default=0.5,
        gt=0,
        description="Shortest time between two `logs` webhook events of one job "
        "(log lines in between arrive with the next one).",
    )
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: str = Field(
        default="json", description="`json` (one object per line) or `text` for humans."
    )

    @field_validator("rate_limit_tiers")
    @classmethod
    def _check_tiers(cls, value: str) -> str:
        parse_tiers(value)
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one or the data dir's SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'genyard.db').resolve()}"

    @property
    def resolved_files_dir(self) -> Path:
        """The blob store's directory: the configured one or ``<data dir>/files``."""
        return self.files_dir or self.data_dir / "files"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def cores(self) -> int:
        """CPU budget for in-process workers."""
        return self.worker_concurrency or os.cpu_count() or 1


def _default_text(value: object) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, Path) and not value.is_absolute():
        text = "./" + value.as_posix()
    else:
        text = str(value)
    return f"`{text}`"


def settings_table() -> str:
    """The README's configuration table (Markdown), one row per :class:`Settings` field."""
    prefix = Settings.model_config.get("env_prefix", "")
    lines = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        description = " ".join((info.description or "").split()).replace("|", "\\|")
        default = _default_text(info.get_default(call_default_factory=True))
        lines.append(f"| `{prefix}{name.upper()}` | {default} | {description} |")
    return "\n".join(lines) + "\n"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)  # type: ignore[arg-type]
