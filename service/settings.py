"""One settings object for the service, read from the environment (``HWNAS_*``) once per process.

The embedded default is a SQLite file in the working directory and a local
Ray started on demand; PostgreSQL and a Ray cluster are settings, never code
changes. Values that would be unsafe in production fail fast when read.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite:///hwnas.db",
        description="SQLAlchemy URL of the service, its jobs' "
        "Optuna studies and the evaluation cache (one database for all)",
    )
    ray_address: str | None = Field(default=None, description="Ray cluster for evaluations (default: a local Ray)")
    ray_cpus: int = Field(default=2, ge=1, le=4096, description="CPUs of the local Ray a worker starts")
    data_dir: Path = Field(default=Path("hwnas-data"), description="exports cache and uploaded tables")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    auth: Literal["auto", "required"] = Field(
        default="auto",
        description="auto: requests without a key act as the local user when the server is bound "
        "to a loopback address; required: every request needs a key",
    )
    # limits per job: a config over one is refused with the limit's name
    max_trials: int = Field(default=100_000, ge=1)
    max_seconds: float = Field(default=7 * 86400, gt=0)
    max_workers: int = Field(default=64, ge=1)
    max_params: int = Field(default=50_000_000, ge=1, description="largest net (params) a job's space may hold")
    max_macs: int = Field(default=5_000_000_000, ge=1, description="largest net (MACs) a job's space may hold")
    max_resolution: int = Field(default=512, ge=8)
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="largest request body (413 above)")
    max_table_bytes: int = Field(default=50_000_000, ge=1024, description="largest uploaded latency table")
    # workers
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a running job whose worker has not renewed its "
        "lease for this long is taken over by another worker",
    )
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0, description="how often an idle worker looks for queued jobs")
    embedded_worker: bool = Field(default=True, description="`hwnas serve` also runs one job worker")
    check_tables: bool = Field(
        default=True,
        description="at start, time the speed signature of every latency table this host can run (1-2 s per "
        "table, in the background, once per boot: cached), so each latency the API answers says whether its "
        "table describes this host; requests themselves never measure",
    )
    warm_jobs: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="at start, read this many most recent jobs' "
        "trials into memory (the first dashboard view after a restart is then not the one that "
        "waits); 0: none",
    )

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                f"not a database URL: {value!r} (e.g. sqlite:///hwnas.db or postgresql+psycopg://user@host:5432/db)"
            ) from None
        return value

    def model_post_init(self, __context: object) -> None:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be at most half of lease_seconds "
                f"({self.lease_seconds}), or a live worker loses its job"
            )

    @property
    def loopback(self) -> bool:
        """Is the server bound to this machine only (the only case where it may run without API keys)?"""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def keys_required(self) -> bool:
        return self.auth == "required" or not self.loopback

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
