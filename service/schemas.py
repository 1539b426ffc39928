"""Request and response models of the REST API, shared with the CLI client's --json output.

One family per resource (JobPublic / JobsPublic(data, count, next_cursor)),
so internal columns (lease, worker, hashes) never reach a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` lists each bad field of a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class Objective(BaseModel):
    metric: str
    direction: Literal["minimize", "maximize"]


class JobProgress(BaseModel):
    done: int = Field(description="finished trials (completed or failed)")
    budget_trials: int | None
    budget_seconds: float | None
    elapsed: float = Field(description="seconds the search has run, over all its attempts")
    fraction: float | None = Field(description="0..1 of the budget (the larger of trials and time)")


class JobLatencyTable(BaseModel):
    """The latency table one latency profile of a job is predicted from (chosen before its first trial)."""

    profile: str
    metrics: list[str] = Field(description="the job's latency metrics this table serves")
    source: str = Field(
        description="host: this host's table (built on first use); found: the best table there was (this host "
        "cannot run the profile); shipped: the table shipped with hwnas; file: the table file the config names"
    )
    table: str
    path: str = Field(description="the table file on the worker's host")
    verdict: Literal["same", "foreign", "unverified"] = Field(
        description="whether the table describes the worker's host (foreign: measured on another)"
    )
    foreign: bool = Field(description="its latencies describe another host than the worker's")
    reasons: list[str]
    built_now: bool = Field(description="the job measured layers or calibration nets into it (its first use here)")
    layers_measured: int = 0
    nets_measured: int = 0
    seconds: float = Field(description="seconds choosing (and building) the table took")
    build_command: str | None = Field(
        default=None, description="the command that builds the worker host's own table (for a foreign table)"
    )
    summary: str
    warning: str | None = Field(default=None, description="a sentence for a person, when the table is foreign")


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    owner: str
    space: str
    status: JobStatus
    created: datetime
    started: datetime | None
    finished: datetime | None
    error: str | None
    progress: JobProgress
    objectives: list[Objective]
    best: dict[str, float]
    front_size: int
    hypervolume: float | None
    attempts: int = Field(description="how many times a worker took the job (more than 1 after a worker died)")
    worker: str | None = Field(
        default=None,
        description="the worker process running the job now (host:pid:id, or "
        "the name it was started with); null while queued and once finished",
    )
    cancel_requested: bool
    notes: list[str]
    latency_tables: list[JobLatencyTable] = Field(
        default_factory=list,
        description="the latency table of each latency profile (empty until the job's worker chose them); "
        "a foreign one means its latencies describe another host",
    )


class JobDetail(JobPublic):
    config: dict[str, Any]


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int = Field(description="jobs matching the filter, over all pages")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class TrialPublic(BaseModel):
    number: int
    state: str
    arch_id: str | None
    metrics: dict[str, float | None]
    objectives: list[float] | None
    feasible: bool
    on_front: bool
    violations: list[float]
    error: str | None
    seconds: float
    node: str | None = Field(
        default=None,
        description="the Ray node id that evaluated the trial's net "
        "(null: evaluated in the job's own process, or every metric came from the cache)",
    )
    latency_foreign: bool = Field(
        default=False, description="a latency metric of the trial was predicted from a table of another host"
    )


class TrialsPublic(BaseModel):
    data: list[TrialPublic]
    count: int
    next_cursor: str | None
    sort: str
    order: Literal["asc", "desc"]


class ParetoPoint(BaseModel):
    number: int
    arch_id: str
    encoding: str
    metrics: dict[str, float | None]
    latency_foreign: bool = Field(
        default=False, description="a latency metric of the net was predicted from a table of another host"
    )


class ParetoPublic(BaseModel):
    objectives: list[Objective]
    data: list[ParetoPoint]
    count: int
    latency_warnings: list[str] = Field(
        default_factory=list,
        description="one per latency profile predicted from a table of another host, with the command that "
        "builds the worker host's table",
    )


class PointsPublic(BaseModel):
    """Every trial of a job as parallel columns, compact for plotting tens of thousands of points."""

    numbers: list[int]
    arch_ids: list[str | None] | None = Field(None, description="absent when asked for with arch_ids=false")
    feasible: list[bool]
    on_front: list[bool]
    metrics: dict[str, list[float | None]] = Field(
        description="metric -> one value (or null) per trial, in the order of `numbers`"
    )
    count: int


class HypervolumePoint(BaseModel):
    trial: int = Field(description="trials finished so far (1-based)")
    hypervolume: float


class HypervolumePublic(BaseModel):
    data: list[HypervolumePoint] = Field(
        description="a step function: the trials that changed the hypervolume, and the latest trial"
    )


class SpaceSummary(BaseModel):
    name: str
    description: str
    cardinality: str = Field(description="exact number of architectures (a decimal string: it exceeds 2**64)")
    resolution: int
    classes: int


class SpaceValidation(BaseModel):
    valid: bool
    name: str | None = None
    cardinality: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class ProxyPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    paper: str = ""
    summary: str = ""
    needs_data: bool = False
    sign: str = ""


class PredictorPublic(BaseModel):
    name: str = Field(description="use as predictor:<name>")
    proxies: list[str]
    trained_on: dict[str, Any]


class ProxiesPublic(BaseModel):
    default: dict[str, Any]
    data: list[ProxyPublic]
    predictors: list[PredictorPublic] = Field(
        default_factory=list,
        description="few-shot accuracy predictors this server's workers can use (hwnas proxies fit makes them)",
    )


class StrategyPublic(BaseModel):
    name: str
    description: str
    options: list[str] = Field(description="what the config's strategy.options may set")
    single_objective_only: bool


class DatasetPublic(BaseModel):
    name: str
    description: str
    path: str
    options: list[str]


class ValidationSummary(BaseModel):
    """How well a table predicted nets it was not calibrated on, next to the measurement's own noise."""

    space: str
    samples: int
    resolution: int | None = None
    calibration: str | None = None
    predicted: dict[str, float | None] = Field(
        description="prediction vs measurement: within_5_pct, within_10_pct, mape_pct, spearman, kendall"
    )
    noise: dict[str, float | None] = Field(
        description="a second measurement vs the first: what a perfect predictor would score"
    )
    measured_on: dict[str, Any] = Field(default_factory=dict)


class HostCheckPublic(BaseModel):
    """Whether a table describes this server's host: its CPU fingerprint, then a speed signature measured on
    this boot (`hwnas lut check`); the server itself never times anything."""

    verdict: Literal["same", "foreign", "unverified"]
    reasons: list[str]
    speed_ratio: float | None = Field(
        description="time here / time in the table over the reference layers (None until measured)"
    )
    net_ratio: float | None = Field(
        default=None,
        description="time here / time in the table over a few of the table's own end-to-end measured nets "
        "(None until measured, or where the layers already told)",
    )
    note: str | None = Field(description="the verdict in a sentence with what to do; None for this host's table")


class TablePublic(BaseModel):
    name: str
    profile: str
    source: Literal["shipped", "user"]
    host: dict[str, Any]
    host_check: HostCheckPublic
    layers: int
    calibration: dict[str, Any]
    validation: list[ValidationSummary] = Field(
        description="one per space validated (`hwnas lut validate`); "
        "GET /api/v1/devices/{profile}/validation/{space} has each net"
    )


class ValidationReport(ValidationSummary):
    table: str
    nets: list[dict[str, Any]] = Field(
        description="arch_id, predicted_ms, raw_ms, measured1_ms, measured2_ms, estimated"
    )


class DevicePublic(BaseModel):
    id: str
    runtime: str
    provider: str
    precision: str
    threads: int
    batch: int
    available: bool
    tables: list[TablePublic]


class LayerLatencyPublic(BaseModel):
    name: str
    key: str | None
    latency_ms: float
    macs: int
    measured: bool


class LatencyPublic(BaseModel):
    profile: str
    latency_ms: float
    raw_sum_ms: float
    measured: bool = Field(description="every layer in the table was measured (not estimated)")
    table: str
    host: str
    foreign_host: bool = Field(description="the table was measured on another host: its latency, not this one's")
    host_check: Literal["same", "foreign", "unverified"] = Field(
        description="whether the table describes this server's host (see DevicePublic.tables[].host_check)"
    )
    host_note: str | None = Field(
        description="the host check in a sentence with what to do (the command that builds this host's table); "
        "None for this host's table"
    )
    layers: list[LayerLatencyPublic]


class Cost(BaseModel):
    params: int
    macs: int
    activations: int


class ArchitecturePublic(BaseModel):
    arch_id: str
    encoding: str
    architecture: dict[str, Any]
    cost: Cost
    latencies: list[LatencyPublic]
    latency_errors: dict[str, str] = Field(default_factory=dict)
    jobs: list[str] = Field(description="ids of your jobs that evaluated this net")


class KeyCreated(BaseModel):
    key: str = Field(description="shown once: store it now")
    prefix: str
    user: str
    name: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    schema_revision: str | None
    ray: str
