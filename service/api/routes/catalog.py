"""/api/v1 catalogue: search spaces (and validating a custom one), known nets, proxies, datasets."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import ValidationError

from searchspace import Architecture, SearchSpaceError, count_cost, known_architectures, list_spaces, load_space
from service import schemas
from service.api.deps import UserDep
from service.api.problems import errors
from service.errors import InvalidError, NotFoundError, shown

router = APIRouter(prefix="/api/v1", tags=["catalogue"])


@lru_cache(maxsize=1)
def _spaces() -> list[schemas.SpaceSummary]:
    return [
        schemas.SpaceSummary(
            name=n,
            description=s.description,
            cardinality=str(s.cardinality()),
            resolution=s.resolution,
            classes=s.classes,
        )
        for n in list_spaces()
        for s in [load_space(n)]
    ]


@router.get("/spaces", response_model=list[schemas.SpaceSummary])
def spaces() -> list[schemas.SpaceSummary]:
    """The built-in search spaces with their exact sizes."""
    return _spaces()


@router.get("/spaces/{name}", responses=errors(404))
def space(name: str) -> dict[str, Any]:
    """A built-in space's full spec (the YAML file as JSON) and its exact size."""
    if name not in list_spaces():
        raise NotFoundError(
            f"name: unknown search space {shown(name)}; built-in spaces: {', '.join(list_spaces())}", field="name"
        )
    s = load_space(name)
    return {**s.to_dict(), "cardinality": str(s.cardinality())}


@router.post("/spaces/validate", response_model=schemas.SpaceValidation, responses=errors(400, 413, 422))
def validate_space(
    spec: Annotated[dict[str, Any], Body(description="a space spec, as in searchspace/spaces/*.yaml")],
) -> schemas.SpaceValidation:
    """Check a custom space: its exact size, or every error with its field path (200 either way)."""
    from service.configs import beyond_blocks, field_errors

    try:
        s = load_space(spec)
        cardinality = s.cardinality()
    except SearchSpaceError as exc:
        return schemas.SpaceValidation(valid=False, errors=field_errors(str(exc)))
    except ValidationError as exc:  # the spec's bounds let a layer through that no block may be
        return schemas.SpaceValidation(valid=False, errors=[{"field": "", "message": beyond_blocks(exc)}])
    return schemas.SpaceValidation(valid=True, name=s.name, cardinality=str(cardinality))


@router.get("/known")
def known() -> list[dict[str, Any]]:
    """Reference nets (MobileNet v1/v2/v3, MnasNet, MobileDets) with their cost."""
    return [
        {"name": n, "arch_id": a.arch_id, "string": a.encode(), **count_cost(a).as_dict()}
        for n, a in known_architectures().items()
    ]


@router.get("/architectures/describe", responses=errors(404, 422))
def describe(
    arch: Annotated[str, Query(max_length=20000, description="known name, JSON or string form")],
) -> dict[str, Any]:
    """Blocks and cost of any architecture (no job needed)."""
    try:  # a name, JSON or a string form; never a path (resolve_architecture would read files)
        if arch.lstrip().startswith("{"):
            a = Architecture.from_json(arch)
        elif arch in known_architectures():
            a = known_architectures()[arch]
        elif "|" in arch:
            a = Architecture.decode(arch)
        else:
            raise NotFoundError(
                f"arch: {shown(arch)} is not a known net ({', '.join(known_architectures())}), "
                "an architecture JSON object or a string form",
                field="arch",
            )
    except SearchSpaceError as exc:
        raise InvalidError(f"arch: {exc}", field="arch") from None
    except RecursionError:
        raise InvalidError("arch: JSON nested too deeply; expected an architecture object", field="arch") from None
    return {"arch_id": a.arch_id, "string": a.encode(), **count_cost(a).as_dict(), "architecture": a.to_dict()}


@router.get("/proxies", response_model=schemas.ProxiesPublic, responses=errors(401))
def proxies(user: UserDep) -> schemas.ProxiesPublic:
    """Accuracy proxies a job may use as `proxy:<name>`, what `proxy:default` stands for and why, and the
    few-shot predictors it may use as `predictor:<name>`."""
    from nas import proxies as registry
    from nas.errors import ProxyError
    from nas.proxies import predictor

    names = [n for n in registry.list_proxies() if n != "default"]
    fitted = []
    for name in predictor.available():
        try:
            model = predictor.load(name)
        except ProxyError:  # a damaged file is not offered
            continue
        fitted.append(schemas.PredictorPublic(name=name, proxies=list(model.proxies), trained_on=model.trained_on))
    return schemas.ProxiesPublic(
        default=registry.describe("default"),
        data=[schemas.ProxyPublic(**registry.describe(n)) for n in names],
        predictors=fitted,
    )


@router.get("/strategies", response_model=list[schemas.StrategyPublic], responses=errors(401))
def strategies(user: UserDep) -> list[schemas.StrategyPublic]:
    """Search strategies a job's `strategy.name` may name (the dashboard's form offers these)."""
    from nas.strategies import STRATEGIES

    return [
        schemas.StrategyPublic(
            name=s.name,
            description=s.description,
            options=sorted(s.options),
            single_objective_only=s.single_objective_only,
        )
        for s in STRATEGIES.entries()
    ]


@router.get("/datasets", response_model=list[schemas.DatasetPublic], responses=errors(401))
def datasets(user: UserDep) -> list[schemas.DatasetPublic]:
    """Datasets a job's `dataset` section may name."""
    from nas.datasets import dataset_names, get_dataset

    return [
        schemas.DatasetPublic(name=n, description=src.description, path=src.path, options=list(src.options))
        for n in dataset_names()
        for src in [get_dataset(n)]
    ]
