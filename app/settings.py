"""Settings from the environment, then from .local/stack.env, which the local stack writes."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import paths
from app.env_file import read_env_file
from app.project_config import load_project_config

_project = load_project_config()

LOCAL_DATABASE_URL = f"postgresql://postgres:postgres@127.0.0.1:{_project.db_port}/postgres"


class Settings(BaseSettings):
    """The edge's settings. The owner's DATABASE_URL is not among them: the edge never needs it."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    edge_database_url: str = Field(
        description="The edge's pool; connects as `authenticator`, like PostgREST."
    )
    supabase_jwt_secret: SecretStr = Field(description="HS256 secret API keys are signed with.")
    edge_host: str = "127.0.0.1"
    edge_port: int = _project.api_port
    api_schemas: tuple[str, ...] = _project.schemas
    api_extra_search_path: tuple[str, ...] = _project.extra_search_path
    api_max_rows: int = _project.max_rows
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_timeout_seconds: float = Field(
        5.0, description="How long a request waits for a free connection before a 504."
    )
    rpc_max_body_bytes: int = Field(1024 * 1024, description="Larger RPC bodies get a 413.")
    # Webhooks. An unset (or empty) secret makes its endpoint refuse every request: unsigned
    # input is never accepted, whatever else is misconfigured.
    whatsapp_app_secret: SecretStr | None = Field(
        None, description="Meta app secret: X-Hub-Signature-256 is its HMAC of the raw body."
    )
    whatsapp_verify_token: SecretStr | None = Field(
        None, description="The token Meta's GET verification handshake must present."
    )
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio auth token: X-Twilio-Signature is signed with it."
    )
    public_base_url: str | None = Field(
        None,
        description="The edge's URL as providers call it (behind a proxy it differs from the "
        "request's); Twilio signs this URL plus the path. Unset: the request's own URL.",
    )
    webhook_max_body_bytes: int = Field(1024 * 1024, description="Larger webhook bodies get a 413.")
    # The edge's connections (app/edge/connections.py): what one client may hold.
    edge_max_header_bytes: int = Field(
        16 * 1024, description="A request line and headers larger than this get a 431."
    )
    edge_header_timeout_seconds: float = Field(
        10.0, description="From a request's first byte to the end of its headers; then a 408."
    )
    edge_body_timeout_seconds: float = Field(
        30.0, description="From the end of a request's headers to the end of its body; then a 408."
    )
    edge_keep_alive_timeout_seconds: float = Field(
        5.0, description="A connection with no request under way is closed after this long."
    )
    edge_max_connections: int | None = Field(
        None,
        description="Open connections at most; beyond, the one waiting longest for a request is "
        "closed. Unset: the open file limit less the pool and a reserve.",
    )
    # The sender (python -m app worker). Meta when its token and phone number id are set, else
    # Twilio when its account and sender are, else the sandbox: a fake of both APIs on a
    # loopback port that accepts sends and logs them, so the local loop works offline.
    whatsapp_api_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v21.0"
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_whatsapp_from: str | None = Field(
        None, description="The WhatsApp sender Twilio sends from, e.g. +14155238886."
    )
    sandbox_port: int = Field(
        _project.api_port + 8, description="Where the sandbox provider listens when it runs."
    )
    sender_workers: int = Field(2, description="Claim-send loops in one worker process.")
    sender_batch_size: int = 50
    sender_lease_seconds: int = 60
    sender_http_timeout_seconds: float = 15.0
    sender_heartbeat_seconds: float = Field(
        5.0, description="How often each sender loop writes its heartbeat (not per message)."
    )
    service_heartbeat_seconds: int | None = Field(
        10,
        description="How often the edge and the sender heartbeat to the service registry "
        "(1 to 3600); unset: they do not register.",
    )
    log_level: str = "info"


def load_settings(env_file: Path | None = paths.STACK_ENV) -> Settings:
    """Environment variables win over the stack file, so a hosted DATABASE_URL overrides it."""
    if env_file is not None and env_file.exists():
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    return Settings()  # type: ignore[call-arg]


def setting(name: str, default: str | None = None) -> str | None:
    """One value, for commands that need it without a whole edge configuration."""
    return os.environ.get(name) or read_env_file(paths.STACK_ENV).get(name) or default


def database_url() -> str:
    return setting("DATABASE_URL", LOCAL_DATABASE_URL)  # type: ignore[return-value]
