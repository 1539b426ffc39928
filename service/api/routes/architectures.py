"""/api/v1/architectures/{arch_id}: a net from one of your jobs, its cost, latency per device, and downloads."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from fastapi import APIRouter, Response
from sqlalchemy import select

from searchspace import Architecture
from service import schemas, trials
from service.api.deps import SessionDep, SettingsDep, UserDep
from service.api.problems import errors
from service.errors import InvalidError, NotFoundError, shown
from service.latency import latencies
from service.models import Architecture as ArchitectureRow
from service.models import Job, Trial, User

router = APIRouter(prefix="/api/v1/architectures", tags=["architectures"], responses=errors(401, 404))


ARCH_ID = re.compile(r"[0-9a-f]{16}")  # Architecture.arch_id: 16 hex digits of a SHA-256


def _owned(session: Any, user: User, arch_id: str) -> tuple[Architecture, list[str]]:
    if not ARCH_ID.fullmatch(arch_id):  # never a query with it: PostgreSQL refuses some strings (NUL) outright
        raise NotFoundError(
            f"arch_id: {shown(arch_id)} is not an architecture id; expected 16 hex digits "
            "(see GET /api/v1/jobs/{id}/pareto)",
            field="arch_id",
        )
    job_ids = trials.jobs_with_arch(session, owner=user, arch_id=arch_id)
    row = session.get(ArchitectureRow, arch_id) if job_ids else None
    if row is None:
        raise NotFoundError(
            f"arch_id: no net {arch_id!r} in your jobs (see GET /api/v1/jobs/{{id}}/pareto)", field="arch_id"
        )
    return Architecture.from_json(row.canonical), job_ids


@router.get("/{arch_id}", response_model=schemas.ArchitecturePublic)
def get_architecture(arch_id: str, user: UserDep, session: SessionDep) -> schemas.ArchitecturePublic:
    """The net, its cost, and its latency on every device with a table (per layer, next to MACs)."""
    arch, job_ids = _owned(session, user, arch_id)
    from searchspace.cost import count_cost

    cost = count_cost(arch)
    job = session.get(Job, job_ids[0])
    space = job.space if job is not None and job.space != "custom" else None
    lat, errors = latencies(arch, space)
    return schemas.ArchitecturePublic(
        arch_id=arch.arch_id,
        encoding=arch.encode(),
        architecture=arch.to_dict(),
        cost=schemas.Cost(params=cost.params, macs=cost.macs, activations=cost.activations),
        latencies=lat,
        latency_errors=errors,
        jobs=job_ids,
    )


@router.get(
    "/{arch_id}/download",
    responses={
        200: {
            "description": "the file",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},  # onnx, onnx-int8
                "application/json": {"schema": {"type": "object"}},  # json
                "text/x-python": {"schema": {"type": "string"}},  # pytorch
                "text/markdown": {"schema": {"type": "string"}},  # card
            },
        },
        **errors(422),
    },
)
def download(
    arch_id: str,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    format: Literal["json", "onnx", "onnx-int8", "pytorch", "card"] = "onnx",
    job: str | None = None,
) -> Response:
    """The net as JSON, ONNX (opset 17), int8 ONNX (static QDQ, calibrated on the job's dataset), a
    self-contained PyTorch file, or a markdown model card. `job` picks which of your jobs it is described from."""
    from nas.datasets import DataSpec
    from nas.search import default_proxy_in
    from service import exports

    arch, job_ids = _owned(session, user, arch_id)
    if job is not None and job not in job_ids:
        raise InvalidError(
            f"job: {shown(job)} is not one of your jobs that evaluated {arch_id}; expected one of {', '.join(job_ids)}",
            field="job",
        )
    job_row = session.get(Job, job or job_ids[0])
    config = json.loads(job_row.config) if job_row is not None else {}
    trial = session.scalars(
        select(Trial).where(Trial.job_id == (job or job_ids[0]), Trial.arch_id == arch_id).limit(1)
    ).first()
    card = None
    if format == "card" and job_row is not None:
        lat, _ = latencies(arch, job_row.space if job_row.space != "custom" else None)
        proxies = [o["metric"] for o in config.get("objectives", []) if o["metric"].startswith("proxy:")]
        stood_for = default_proxy_in(json.loads(job_row.notes or "[]"))  # what the job's run resolved it to
        proxies = [f"{m} -> {stood_for}" if m == "proxy:default" and stood_for else m for m in proxies]
        card = exports.CardContext(
            job_id=job_row.id,
            job_name=job_row.name,
            space=job_row.space,
            objectives=config.get("objectives", []),
            proxy=", ".join(proxies) or None,
            dataset=(config.get("dataset") or {}).get("name", "fashion-mnist"),
            metrics=json.loads(trial.metrics) if trial is not None else {},
            latencies=[
                {
                    "profile": x.profile,
                    "latency_ms": x.latency_ms,
                    "table": x.table,
                    "host": x.host,
                    "measured": x.measured,
                }
                for x in lat
            ],
        )
    dataset = DataSpec.model_validate(config["dataset"]) if config.get("dataset") else None
    try:
        out = exports.render(arch, format, cache_dir=settings.exports_dir, dataset=dataset, card=card)
    except exports.ExportError as exc:
        raise InvalidError(str(exc), field="format") from None
    return Response(
        out.content,
        media_type=out.media_type,
        headers={"Content-Disposition": f'attachment; filename="{out.filename}"'},
    )
