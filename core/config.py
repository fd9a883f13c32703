"""Settings, read once from ``UNIVERS_*`` environment variables by the entry points (CLI, app
factory). Domain code receives a :class:`Settings`; it never reads the environment itself."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _failures(value: str) -> dict[str, int]:
    out = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, count = part.partition(":")
        out[name] = int(count or 1)
    return out


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    replica_url: str = ""  # a read replica (PostgreSQL streaming replication) for reports, forecast and exports; empty: the primary
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # API worker processes of ``univers serve`` (uvicorn); the scheduler runs in each, lock-guarded
    renewal_lead_days: int = 7
    renewal_chunk: int = 2000  # billing accounts per renewal transaction
    renewal_workers: int = 0  # connections renewing at once; 0: one per core on PostgreSQL, one on SQLite
    outbox_max_attempts: int = 6
    outbox_lease_seconds: int = 300
    gateway_concurrency: int = 8  # charges in flight per worker
    gateway_timeout: float = 30.0  # seconds a charge waits for the gateway's answer; then retried later, same key
    rate_limit: int = 1200  # requests per minute per API key (per client address without a key), per API worker; 0: off
    smtp_url: str = ""  # smtp://host:port, smtps://…, smtp+starttls://user:pass@host:587; empty: .eml files in <data dir>/mail
    log_format: str = "text"  # text | json: one JSON object per line (core.logs)
    trust_forwarded_proto: bool = False  # X-Forwarded-Proto: https from the proxy in front means TLS (HSTS is sent)
    mail_from: str = "Univers billing <billing@univers.example>"
    public_url: str = ""  # where customers reach the console (links in mails); empty: http://<host>:<port>
    contact_change_ttl_days: int = 7  # how long both accounts have to accept a contact change
    alert_minutes: int = 15  # how often the spending alerts of pay-as-you-go projects are checked
    sim_delay: float = 0.0
    sim_gateway_delay: float = 0.0  # seconds the test gateway takes to answer (a slow gateway, for the drills)
    log_tail_poll_seconds: float = 1.0  # how often a live tail of infrastructure logs reads new entries
    sim_failures: dict[str, int] = field(default_factory=dict)
    sim_path: str = ""
    demo: bool = False
    scheduler: bool = True
    disabled_plugins: tuple[str, ...] = ()
    autoload_plugins: bool = True
    trace_hooks: bool = False  # log every hook call and its result (logger ``univers.plugins``, INFO)
    pt_signing_key: str = ""  # PEM file of the RSA key that signs Portugal's fiscal chain; empty: the vendored TEST key

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{Path(self.data_dir) / 'univers.db'}")
        if not self.sim_path:
            object.__setattr__(self, "sim_path", str(Path(self.data_dir) / "sim.db"))

    @property
    def base_url(self) -> str:
        """The console's address in links sent by mail: configured, never taken from a request's Host."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def engine_name(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        get = lambda name: env.get(f"UNIVERS_{name}")  # noqa: E731
        values: dict = {}
        conversions = {
            "DATA_DIR": ("data_dir", Path),
            "DATABASE_URL": ("database_url", str),
            "REPLICA_URL": ("replica_url", str),
            "HOST": ("host", str),
            "PORT": ("port", int),
            "WORKERS": ("workers", int),
            "RENEWAL_LEAD_DAYS": ("renewal_lead_days", int),
            "RENEWAL_CHUNK": ("renewal_chunk", int),
            "RENEWAL_WORKERS": ("renewal_workers", int),
            "OUTBOX_MAX_ATTEMPTS": ("outbox_max_attempts", int),
            "GATEWAY_CONCURRENCY": ("gateway_concurrency", int),
            "GATEWAY_TIMEOUT": ("gateway_timeout", float),
            "RATE_LIMIT": ("rate_limit", int),
            "SMTP_URL": ("smtp_url", str),
            "MAIL_FROM": ("mail_from", str),
            "LOG_FORMAT": ("log_format", lambda v: v.strip().lower()),
            "TRUST_FORWARDED_PROTO": ("trust_forwarded_proto", _bool),
            "PUBLIC_URL": ("public_url", str),
            "CONTACT_CHANGE_TTL_DAYS": ("contact_change_ttl_days", int),
            "ALERT_MINUTES": ("alert_minutes", int),
            "SIM_DELAY": ("sim_delay", float),
            "SIM_GATEWAY_DELAY": ("sim_gateway_delay", float),
            "LOG_TAIL_POLL_SECONDS": ("log_tail_poll_seconds", float),
            "SIM_FAILURES": ("sim_failures", _failures),
            "SIM_PATH": ("sim_path", str),
            "DEMO": ("demo", _bool),
            "SCHEDULER": ("scheduler", _bool),
            "DISABLE_PLUGINS": ("disabled_plugins", lambda v: tuple(filter(None, (p.strip() for p in v.split(","))))),
            "AUTOLOAD_PLUGINS": ("autoload_plugins", _bool),
            "TRACE_HOOKS": ("trace_hooks", _bool),
            "PT_SIGNING_KEY": ("pt_signing_key", str),
        }
        for key, (attr, conv) in conversions.items():
            raw = get(key)
            if raw not in (None, ""):
                values[attr] = conv(raw)
        values.update(overrides)
        return cls(**values)
