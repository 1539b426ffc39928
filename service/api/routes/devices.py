"""/api/v1/devices: device profiles with their latency tables; upload a table measured by the device agent."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from service import schemas
from service.api.deps import UserDep
from service.api.problems import errors
from service.errors import InvalidError, NotFoundError, shown
from service.latency import devices as list_devices
from service.latency import forget_tables, table_public, validation_report

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=errors(401))


@router.get("", response_model=list[schemas.DevicePublic])
def devices(user: UserDep) -> list[schemas.DevicePublic]:
    """Profiles the server has latency tables for, each table with its host, whether it describes this server's
    host (`host_check`: the CPU fingerprint, or a speed signature `hwnas lut check` measured on this boot; the
    server times nothing) and calibration figures."""
    return list_devices()


@router.get("/{profile}/validation/{space}", response_model=schemas.ValidationReport, responses=errors(404))
def validation(profile: str, space: str, user: UserDep) -> schemas.ValidationReport:
    """Every net of a table's validation on one space: predicted against two independent measurements."""
    report = validation_report(profile, space)
    if report is None:
        raise NotFoundError(
            f"space: no validation of a {shown(profile)} table on {shown(space)} (`hwnas lut "
            f"validate --profile PROFILE --space SPACE` makes one)",
            field="space",
        )
    return report


@router.post(
    "/tables",
    status_code=201,
    response_model=schemas.TablePublic,
    responses=errors(413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def upload_table(request: Request, user: UserDep) -> schemas.TablePublic:
    """Add a table written by the device agent (`python kit.zip` on the device): validated, then merged into
    this server's table of that profile and host, and recalibrated."""
    raw = await request.body()  # problems.BodyLimit holds it to HWNAS_MAX_TABLE_BYTES
    if not raw:
        raise InvalidError("body: expected a latency table (.json or .json.gz from the device agent)", field="body")

    def merge() -> schemas.TablePublic:
        import gzip
        import json

        from latency_tables.api import import_table
        from latency_tables.errors import LatencyTableError
        from latency_tables.table import LatencyTable

        try:
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            table = LatencyTable.from_dict(json.loads(text), "body")
        except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidError(f"body: not a latency table ({exc})", field="body") from None
        except RecursionError:
            raise InvalidError("body: not a latency table (JSON nested too deeply)", field="body") from None
        except LatencyTableError as exc:
            raise InvalidError(str(exc), field="body") from None
        try:
            result = import_table(table)
        except LatencyTableError as exc:
            raise InvalidError(str(exc), field="body") from None
        forget_tables()
        return table_public(result.path, result.table, added=result.added, skipped=result.calibration_skipped)

    return await run_in_threadpool(merge)
