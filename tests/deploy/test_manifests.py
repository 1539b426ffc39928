"""The deployment files of issue 14 (deploy/, .dockerignore) against the code they deploy.

Nothing here is a copied list: setting names come from ``service.settings.Settings`` and from the
``HWNAS_*`` variables the source reads, paths from the FastAPI app's routes, commands from the real CLI
parser, the torch pin and the Python version from pyproject.toml, the project install and the system
packages from the Makefile. No network, no Docker; ``kubectl kustomize`` only where kubectl exists.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
PYPROJECT = ROOT / "pyproject.toml"
SOURCE_PACKAGES = ("service", "nas", "latency_tables", "searchspace")

# compose services by role, and the Kubernetes objects by name (the files' own vocabulary, checked to exist)
HWNAS_SERVICES = ("migrate", "api", "worker", "ray-head", "ray-worker")
DRIVERS = ("api", "worker")  # processes that call ray.init (the API: /readyz's check and the same settings)
RAY_NODES = ("ray-head", "ray-worker")
K8S_API, K8S_WORKER, K8S_MIGRATE = "hwnas-api", "hwnas-worker", "hwnas-migrate"
SECRET = object()  # an env value that comes from a Secret


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- the code's side
@cache
def settings_fields() -> dict[str, Any]:
    from service.settings import Settings

    return dict(Settings.model_fields)


@cache
def settings_env_names() -> frozenset[str]:
    return frozenset(f"HWNAS_{name.upper()}" for name in settings_fields())


@cache
def code_env_names() -> frozenset[str]:
    """HWNAS_* variables the source reads outside Settings (os.environ.get("HWNAS_X"), os.environ["HWNAS_X"])."""
    pattern = re.compile(r"""(?:environ(?:\.get)?|getenv)\s*[(\[]\s*["'](HWNAS_[A-Z0-9_]+)["']""")
    found = set()
    for package in SOURCE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


def known_env_names() -> frozenset[str]:
    return settings_env_names() | code_env_names()


def default_port() -> int:
    port: int = settings_fields()["port"].default
    return port


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def torch_pin() -> str:
    pins = [d for d in pyproject()["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml [project].dependencies: expected one torch==X pin, found {pins}"
    return pins[0].split("==", 1)[1].strip()


def parse_cli(argv: list[str], where: str) -> Any:
    """The real parser's reading of ``hwnas ARGV`` (a usage error becomes a failure naming ``where``)."""
    from service.cli import build_parser

    assert argv and argv[0] == "hwnas", f"{where}: expected an `hwnas ...` command, got {argv}"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{where}: `{shlex.join(argv)}` is not a valid hwnas command line (service/cli)")


# ---------------------------------------------------------------- compose
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^{}]*))?\}")
PLACEHOLDER = "placeholder-from-the-environment"


def interpolate(text: str, seen: set[str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with nothing set: defaults, else a placeholder."""
    while True:
        match = _VAR.search(text)
        if match is None:
            return text.replace("$$", "$")
        name, op, arg = match.groups()
        seen.add(name)
        value = arg if op in (":-", "-") else PLACEHOLDER
        text = text[: match.start()] + value + text[match.end() :]


def _resolve(node: Any, seen: set[str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, seen) for v in node]
    if isinstance(node, str):
        return interpolate(node, seen)
    return node


@cache
def compose_raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{rel(COMPOSE)}: no services"
    return data


@cache
def compose_resolved() -> tuple[dict[str, Any], frozenset[str]]:
    seen: set[str] = set()
    data = _resolve(compose_raw(), seen)
    return data, frozenset(seen)


def services() -> dict[str, Any]:
    out: dict[str, Any] = compose_resolved()[0]["services"]
    return out


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"{rel(COMPOSE)}: no service {name!r} (has {sorted(services())})"
    svc: dict[str, Any] = services()[name]
    return svc


def compose_env(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def compose_command(name: str) -> list[str]:
    command = service(name).get("command")
    assert command, f"{rel(COMPOSE)}: services.{name}.command is missing"
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def option(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag=V`` or ``--flag V`` in argv."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def urls_in(value: Any) -> list[str]:
    text = " ".join(value) if isinstance(value, list) else str(value)
    return re.findall(r"https?://[^\s'\"]+", text)


# ---------------------------------------------------------------- Kubernetes
@cache
def k8s_files() -> dict[str, list[dict[str, Any]]]:
    files = {}
    for path in sorted(K8S.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        files[path.name] = docs
    assert files, f"{rel(K8S)}: no YAML files"
    return files


def k8s_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, docs in k8s_files().items():
        if name == "kustomization.yaml":
            continue
        for doc in docs:
            yield name, doc


def k8s_object(kind: str, name: str) -> tuple[str, dict[str, Any]]:
    found = [(f, d) for f, d in k8s_objects() if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{rel(K8S)}: expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def configmap() -> dict[str, str]:
    _, doc = k8s_object("ConfigMap", "hwnas-config")
    return {str(k): str(v) for k, v in doc.get("data", {}).items()}


def pod_specs() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(file, label, pod template, owner object) of every workload: Deployments, Jobs, RayCluster groups."""
    for file, doc in k8s_objects():
        kind, name = doc.get("kind"), doc["metadata"]["name"]
        if kind in ("Deployment", "Job"):
            yield file, f"{kind} {name}", doc["spec"]["template"], doc
        elif kind == "RayCluster":
            yield file, f"RayCluster {name} head", doc["spec"]["headGroupSpec"]["template"], doc
            for group in doc["spec"].get("workerGroupSpecs", []):
                yield file, f"RayCluster {name} group {group['groupName']}", group["template"], doc


def containers() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(file, label, container, pod template) of every container."""
    for file, label, template, _ in pod_specs():
        for c in template["spec"]["containers"]:
            yield file, f"{label} container {c['name']}", c, template


def workload_container(name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The one container of the Deployment/Job ``name``: (file, container, pod template)."""
    for file, label, template, owner in pod_specs():
        if owner["metadata"]["name"] == name and owner["kind"] in ("Deployment", "Job"):
            assert len(template["spec"]["containers"]) == 1, f"{file}: {label}: expected one container"
            return file, template["spec"]["containers"][0], template
    pytest.fail(f"{rel(K8S)}: no Deployment or Job {name!r}")


def k8s_env(container: dict[str, Any], file: str) -> dict[str, Any]:
    """A container's environment: envFrom ConfigMaps, then env (literal, configMapKeyRef; Secrets as SECRET)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"{file}: container {container['name']}: envFrom {source} is not a configMapRef"
        assert ref["name"] == "hwnas-config", f"{file}: envFrom names ConfigMap {ref['name']!r}, not hwnas-config"
        env.update(configmap())
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            assert ref["key"] in configmap(), f"{file}: env {item['name']}: no key {ref['key']!r} in hwnas-config"
            env[item["name"]] = configmap()[ref["key"]]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = SECRET
    return env


def container_port(container: dict[str, Any], port: int | str, where: str) -> int:
    """A probe's or Service's port, by number or by the container's port name."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"{where}: port {port!r} is not a named port of container {container['name']}"
    return int(named[port])


# ---------------------------------------------------------------- Dockerfile and Makefile
@cache
def dockerfile() -> list[tuple[int, str, str]]:
    """(stage, INSTRUCTION, arguments) with continuations joined, comments dropped, ARG defaults expanded."""
    lines, buf = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):  # comments, the syntax directive included
            continue
        buf += " " + stripped.removesuffix("\\").strip() if buf else stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(buf)
            buf = ""
    args: dict[str, str] = {}
    out, stage = [], -1

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)

    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "ARG":
            name, _, default = rest.partition("=")
            if default:
                args[name.strip()] = default.strip()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, expand(rest.strip())))
    return out


def docker_instructions(instr: str, stage: int | None = None) -> list[tuple[int, str]]:
    return [(s, rest) for s, i, rest in dockerfile() if i == instr and (stage is None or s == stage)]


def final_stage() -> int:
    return max(s for s, _, _ in dockerfile())


def exec_form(text: str) -> list[str]:
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def pip_installs(stage: int | None = None) -> list[tuple[int, list[str]]]:
    """Every `pip install` of a RUN line (split at &&), as its argument tokens."""
    found = []
    for s, run in docker_instructions("RUN", stage):
        for part in run.split("&&"):
            tokens = shlex.split(part)
            for i in range(len(tokens) - 1):
                if tokens[i] == "pip" and tokens[i + 1] == "install":
                    found.append((s, tokens[i + 2 :]))
                    break
    return found


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for _, rest in docker_instructions("ENV", final_stage()):
        for token in shlex.split(rest):
            key, _, value = token.partition("=")
            env[key] = value
    return env


@cache
def makefile_vars() -> dict[str, str]:
    out = {}
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z_]+)\s*(?::=|\?=|=)\s*(.*)$", line)
        if m:
            out[m[1]] = m[2].strip()
    return out


def make_expand(text: str) -> str:
    for _ in range(5):
        text = re.sub(r"\$\((\w+)\)", lambda m: makefile_vars().get(m[1], m[0]), text)
    return text


def makefile_recipe(target_pattern: str) -> list[str]:
    """The recipe lines of the rule whose target line matches ``target_pattern``."""
    lines = MAKEFILE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(target_pattern, line):
            recipe = []
            for body in lines[i + 1 :]:
                if not body.startswith("\t"):
                    break
                recipe.append(body.strip())
            return recipe
    pytest.fail(f"Makefile: no rule matching {target_pattern!r}")


# ---------------------------------------------------------------- the app
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from service.api.main import create_app
    from service.settings import Settings

    tmp = tmp_path_factory.mktemp("deploy-app")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'hwnas.db'}",
        data_dir=tmp / "data",
        host="127.0.0.1",
        auth="auto",
        ray_address=None,
        warm_jobs=0,
    )
    return create_app(settings)


def _collect_routes(routes: Any, prefix: str, out: dict[str, set[str]]) -> None:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included routers (as service/api/problems.py)
        if inner is not None:
            context = getattr(route, "include_context", None)
            _collect_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""), out)
        elif getattr(route, "path", None) is not None:
            out.setdefault(prefix + route.path, set()).update(getattr(route, "methods", None) or set())


@pytest.fixture(scope="module")
def routes(app: Any) -> dict[str, set[str]]:
    """Path -> methods of every route of the app."""
    out: dict[str, set[str]] = {}
    _collect_routes(app.routes, "", out)
    assert "/healthz" in out, f"could not read the app's routes (found {sorted(out)})"
    return out


@pytest.fixture(scope="module")
def client(app: Any) -> Any:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HWNAS_* from the machine running the tests leaks into a Settings built from a manifest."""
    import os

    for name in list(os.environ):
        if name.startswith("HWNAS_"):
            monkeypatch.delenv(name)


# ================================================================ settings
def test_every_hwnas_variable_is_one_the_code_reads() -> None:
    assert "HWNAS_API_KEY" in code_env_names(), "the scan of the source for HWNAS_* reads found nothing"
    known = known_env_names()
    named: list[tuple[str, str]] = []
    for svc in services():
        named += [(f"{rel(COMPOSE)}: services.{svc}.environment", k) for k in compose_env(svc)]
    named += [(f"{rel(COMPOSE)}: ${{...}} interpolation", k) for k in compose_resolved()[1]]
    named += [(f"{rel(K8S)}/configmap.yaml: data", k) for k in configmap()]
    for file, label, c, _ in containers():
        named += [(f"{rel(K8S)}/{file}: {label}: env", e["name"]) for e in c.get("env", [])]
    named += [(f"{rel(DOCKERFILE)}: ENV", k) for k in docker_env()]
    for where, name in named:
        if name.startswith("HWNAS_"):
            assert name in known, (
                f"{where}: {name} is neither a field of service.settings.Settings nor a "
                f"variable the code reads (known: {sorted(known)})"
            )


def _settings_from(env: dict[str, Any], where: str, database_url: str | None = None) -> Any:
    from pydantic import ValidationError

    from service.settings import Settings

    values: dict[str, Any] = {}
    for key, value in env.items():
        if key in settings_env_names():
            field = key.removeprefix("HWNAS_").lower()
            values[field] = database_url if value is SECRET and field == "database_url" else value
    try:
        return Settings(**values)
    except ValidationError as exc:
        pytest.fail(f"{where}: the HWNAS_* values are not valid settings: {exc}")


def test_compose_settings_are_valid_and_complete(clean_env: None) -> None:
    for svc in HWNAS_SERVICES:
        _settings_from(compose_env(svc), f"{rel(COMPOSE)}: services.{svc}.environment")
    for svc in (*DRIVERS, "migrate"):
        env = compose_env(svc)
        assert "HWNAS_DATABASE_URL" in env, f"{rel(COMPOSE)}: services.{svc}.environment lacks HWNAS_DATABASE_URL"
        url = urlsplit(env["HWNAS_DATABASE_URL"])
        assert url.scheme.startswith("postgresql") and url.hostname == "postgres", (
            f"{rel(COMPOSE)}: services.{svc}: HWNAS_DATABASE_URL should reach the postgres service, "
            f"not {url.scheme}://{url.hostname}"
        )
    for svc in DRIVERS:
        env = compose_env(svc)
        for name in ("HWNAS_RAY_ADDRESS", "HWNAS_AUTH", "HWNAS_HOST"):
            assert env.get(name), f"{rel(COMPOSE)}: services.{svc}.environment: {name} is not set"
        settings = _settings_from(env, f"{rel(COMPOSE)}: services.{svc}")
        assert settings.auth == "required" and settings.keys_required, (
            f"{rel(COMPOSE)}: services.{svc}: HWNAS_AUTH should be required on a network-facing deployment"
        )
        assert not settings.loopback, f"{rel(COMPOSE)}: services.{svc}: HWNAS_HOST {settings.host} is loopback"


def test_k8s_settings_are_valid_and_complete(clean_env: None) -> None:
    _, secret = k8s_object("Secret", "hwnas-database")
    example_url = secret["stringData"]["url"]
    for file, label, c, _ in containers():
        env = k8s_env(c, file)
        _settings_from(env, f"{rel(K8S)}/{file}: {label}", database_url=example_url)
        for item in c.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert (ref["name"], ref["key"]) == (secret["metadata"]["name"], "url"), (
                    f"{rel(K8S)}/{file}: {label}: env {item['name']} reads Secret {ref['name']}/{ref['key']}, "
                    f"but secret.example.yaml documents {secret['metadata']['name']}/url"
                )
    for name in (K8S_API, K8S_WORKER, K8S_MIGRATE):
        file, c, _ = workload_container(name)
        env = k8s_env(c, file)
        assert env.get("HWNAS_DATABASE_URL") is SECRET, (
            f"{rel(K8S)}/{file}: {name}: HWNAS_DATABASE_URL should come from the Secret hwnas-database"
        )
    for name in (K8S_API, K8S_WORKER):
        file, c, _ = workload_container(name)
        env = k8s_env(c, file)
        for var in ("HWNAS_RAY_ADDRESS", "HWNAS_AUTH", "HWNAS_HOST"):
            assert env.get(var), f"{rel(K8S)}/{file}: {name}: {var} is not set (env or hwnas-config)"
        settings = _settings_from(env, f"{rel(K8S)}/{file}: {name}", database_url=example_url)
        assert settings.auth == "required", f"{rel(K8S)}/configmap.yaml: HWNAS_AUTH should be required"
        assert not settings.loopback, f"{rel(K8S)}/configmap.yaml: HWNAS_HOST {settings.host} is loopback"


def test_data_dir_is_the_same_and_writable_everywhere() -> None:
    image_dir = docker_env().get("HWNAS_DATA_DIR")
    assert image_dir, f"{rel(DOCKERFILE)}: ENV HWNAS_DATA_DIR is not set"
    assert configmap().get("HWNAS_DATA_DIR") == image_dir, (
        f"{rel(K8S)}/configmap.yaml: HWNAS_DATA_DIR {configmap().get('HWNAS_DATA_DIR')} != Dockerfile's {image_dir}"
    )
    for svc in HWNAS_SERVICES:
        value = compose_env(svc).get("HWNAS_DATA_DIR", image_dir)
        assert value == image_dir, f"{rel(COMPOSE)}: services.{svc}: HWNAS_DATA_DIR {value} != Dockerfile's {image_dir}"
    for svc in (*DRIVERS, *RAY_NODES):
        targets = [
            v["target"] if isinstance(v, dict) else str(v).split(":")[1] for v in service(svc).get("volumes", [])
        ]
        assert image_dir in targets, f"{rel(COMPOSE)}: services.{svc}.volumes: nothing mounted at {image_dir}"
    for name in (K8S_API, K8S_WORKER):
        file, c, _ = workload_container(name)
        if c.get("securityContext", {}).get("readOnlyRootFilesystem"):
            mount_paths = {m["mountPath"] for m in c.get("volumeMounts", [])}
            for path in ("/tmp", configmap()["HWNAS_DATA_DIR"]):
                assert path in mount_paths, f"{rel(K8S)}/{file}: {name}: readOnlyRootFilesystem but no volume at {path}"


# ================================================================ probes, ports, metrics
def test_probe_paths_are_routes_of_the_app(routes: dict[str, set[str]], client: Any) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    probes: list[tuple[str, str, int]] = []  # (where, path, port)
    for name in (K8S_API,):
        file, c, _ = workload_container(name)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c.get(kind)
            assert probe and "httpGet" in probe, f"{rel(K8S)}/{file}: {name}: {kind} should be an httpGet probe"
            get = probe["httpGet"]
            probes.append(
                (
                    f"{rel(K8S)}/{file}: {name}.{kind}",
                    get["path"],
                    container_port(c, get["port"], f"{rel(K8S)}/{file}: {name}.{kind}"),
                )
            )
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{rel(K8S)}/{file}: liveness is not /healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{rel(K8S)}/{file}: readiness is not /readyz"
    test = service("api").get("healthcheck", {}).get("test")
    assert test, f"{rel(COMPOSE)}: services.api.healthcheck.test is missing"
    probes += [
        (f"{rel(COMPOSE)}: services.api.healthcheck", urlsplit(u).path, urlsplit(u).port or 80) for u in urls_in(test)
    ]
    healthchecks = docker_instructions("HEALTHCHECK", final_stage())
    assert len(healthchecks) == 1, f"{rel(DOCKERFILE)}: expected one HEALTHCHECK in the final stage"
    probes += [
        (f"{rel(DOCKERFILE)}: HEALTHCHECK", urlsplit(u).path, urlsplit(u).port or 80)
        for u in urls_in(healthchecks[0][1])
    ]
    assert any(w.startswith(rel(COMPOSE)) for w, _, _ in probes), f"{rel(COMPOSE)}: api healthcheck has no URL"
    assert any(w.startswith(rel(DOCKERFILE)) for w, _, _ in probes), f"{rel(DOCKERFILE)}: HEALTHCHECK has no URL"
    for where, path, port in probes:
        assert path in routes and "GET" in routes[path], f"{where}: {path} is not a GET route of the app"
        assert port == default_port(), f"{where}: port {port} != Settings().port {default_port()}"
    for svc in services():
        if svc in HWNAS_SERVICES and compose_command(svc)[:2] != ["hwnas", "serve"]:
            hc = service(svc).get("healthcheck", {})
            assert hc.get("disable") or hc.get("test"), (
                f"{rel(COMPOSE)}: services.{svc}: inherits the image's HEALTHCHECK on :{default_port()}/healthz, "
                "which only the API answers; disable it or give it its own"
            )


def test_ports_agree_with_the_settings_default() -> None:
    port = default_port()
    exposed = [int(p.split("/")[0]) for _, rest in docker_instructions("EXPOSE", final_stage()) for p in rest.split()]
    assert exposed == [port], f"{rel(DOCKERFILE)}: EXPOSE {exposed} != Settings().port {port}"
    cmd = docker_instructions("CMD", final_stage())
    assert cmd, f"{rel(DOCKERFILE)}: no CMD"
    argv = exec_form(cmd[-1][1])
    assert int(parse_cli(argv, f"{rel(DOCKERFILE)}: CMD").port) == port, f"{rel(DOCKERFILE)}: CMD --port != {port}"
    argv = compose_command("api")
    assert int(parse_cli(argv, f"{rel(COMPOSE)}: services.api.command").port) == port, (
        f"{rel(COMPOSE)}: services.api.command --port != {port}"
    )
    targets = [str(p).rsplit(":", 1)[-1].split("/")[0] for p in service("api").get("ports", [])]
    assert targets == [str(port)], f"{rel(COMPOSE)}: services.api.ports container side {targets} != {port}"
    for svc in HWNAS_SERVICES:
        value = compose_env(svc).get("HWNAS_PORT")
        assert value in (None, str(port)), f"{rel(COMPOSE)}: services.{svc}: HWNAS_PORT {value} != {port}"
    assert configmap().get("HWNAS_PORT", str(port)) == str(port), f"{rel(K8S)}/configmap.yaml: HWNAS_PORT != {port}"
    file, c, template = workload_container(K8S_API)
    assert [p["containerPort"] for p in c["ports"]] == [port], f"{rel(K8S)}/{file}: containerPort != {port}"
    assert int(parse_cli(c["command"], f"{rel(K8S)}/{file}: {K8S_API}.command").port) == port
    svc_file, k8s_svc = k8s_object("Service", K8S_API)
    selector = k8s_svc["spec"]["selector"]
    labels = template["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in selector.items()), (
        f"{rel(K8S)}/{svc_file}: Service {K8S_API} selector {selector} does not select the API pods {labels}"
    )
    for p in k8s_svc["spec"]["ports"]:
        target = container_port(c, p.get("targetPort", p["port"]), f"{rel(K8S)}/{svc_file}: Service {K8S_API}")
        assert p["port"] == port and target == port, (
            f"{rel(K8S)}/{svc_file}: Service {K8S_API} port {p['port']} -> {target}, expected {port} -> {port}"
        )


def test_prometheus_annotations_match_the_metrics_route(routes: dict[str, set[str]], client: Any) -> None:
    file, c, template = workload_container(K8S_API)
    notes = template["metadata"].get("annotations", {})
    where = f"{rel(K8S)}/{file}: {K8S_API} pod annotations"
    assert notes.get("prometheus.io/scrape") == "true", f'{where}: prometheus.io/scrape should be "true"'
    assert notes.get("prometheus.io/port") == str(c["ports"][0]["containerPort"]) == str(default_port()), (
        f"{where}: prometheus.io/port {notes.get('prometheus.io/port')} != the API's port {default_port()}"
    )
    path = notes.get("prometheus.io/path")
    assert path in routes and "GET" in routes[path], f"{where}: prometheus.io/path {path} is not a route"
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), (
        f"{where}: GET {path} gave {r.status_code} {r.headers.get('content-type')}, not Prometheus text"
    )


# ================================================================ image and commands
def test_one_image_everywhere() -> None:
    images = {f"{rel(COMPOSE)}: services.{svc}.image": service(svc).get("image") for svc in HWNAS_SERVICES}
    images |= {f"{rel(K8S)}/{file}: {label}": c.get("image") for file, label, c, _ in containers()}
    distinct = set(images.values())
    assert len(distinct) == 1, "different images: " + "; ".join(f"{w} = {i}" for w, i in sorted(images.items()))
    image = distinct.pop()
    assert image and image.rsplit(":", 1)[-1] == pyproject()["project"]["version"], (
        f"{rel(COMPOSE)} and {rel(K8S)}: image {image}'s tag is not the project's version "
        f"{pyproject()['project']['version']} (pyproject.toml)"
    )
    builds = [svc for svc in HWNAS_SERVICES if service(svc).get("build")]
    for svc in builds:
        build = service(svc)["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).resolve() == DOCKERFILE, (
            f"{rel(COMPOSE)}: services.{svc}.build does not build {rel(DOCKERFILE)} from the repository root"
        )


def test_commands_are_real_cli_commands() -> None:
    from service.cli import serve

    api = parse_cli(compose_command("api"), f"{rel(COMPOSE)}: services.api.command")
    assert api.func is serve.cmd_serve and api.no_worker, f"{rel(COMPOSE)}: services.api should run serve --no-worker"
    worker = parse_cli(compose_command("worker"), f"{rel(COMPOSE)}: services.worker.command")
    assert worker.func is serve.cmd_worker, f"{rel(COMPOSE)}: services.worker should run `hwnas worker`"
    migrate = parse_cli(compose_command("migrate"), f"{rel(COMPOSE)}: services.migrate.command")
    assert migrate.func is serve.cmd_db_upgrade, f"{rel(COMPOSE)}: services.migrate should run `hwnas db upgrade`"
    assert service("migrate").get("restart") == "no", f'{rel(COMPOSE)}: services.migrate.restart should be "no"'
    dep = service("api").get("depends_on", {}).get("migrate", {})
    assert dep.get("condition") == "service_completed_successfully", (
        f"{rel(COMPOSE)}: services.api.depends_on.migrate should wait for service_completed_successfully"
    )
    assert service("postgres").get("healthcheck", {}).get("test"), f"{rel(COMPOSE)}: postgres has no healthcheck"
    assert service("migrate")["depends_on"]["postgres"]["condition"] == "service_healthy", (
        f"{rel(COMPOSE)}: services.migrate should wait for a healthy postgres"
    )

    expected = {K8S_API: serve.cmd_serve, K8S_WORKER: serve.cmd_worker, K8S_MIGRATE: serve.cmd_db_upgrade}
    for name, func in expected.items():
        file, c, _ = workload_container(name)
        argv = [*c.get("command", []), *c.get("args", [])]
        parsed = parse_cli(argv, f"{rel(K8S)}/{file}: {name}.command")
        assert parsed.func is func, f"{rel(K8S)}/{file}: {name} runs `{shlex.join(argv)}`, not {func.__name__}"
        if name == K8S_API:
            assert parsed.no_worker, f"{rel(K8S)}/{file}: {name} should run `hwnas serve --no-worker`"
    argv = exec_form(docker_instructions("CMD", final_stage())[-1][1])
    assert parse_cli(argv, f"{rel(DOCKERFILE)}: CMD").func is serve.cmd_serve


def test_workers_get_time_for_a_lease_handover() -> None:
    lease = float(configmap().get("HWNAS_LEASE_SECONDS", settings_fields()["lease_seconds"].default))
    _, doc = k8s_object("Deployment", K8S_WORKER)
    grace = doc["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    assert grace >= lease, (
        f"{rel(K8S)}/worker.yaml: terminationGracePeriodSeconds {grace} is shorter than the "
        f"lease (HWNAS_LEASE_SECONDS {lease:g})"
    )
    stop = str(service("worker").get("stop_grace_period", "10s"))
    m = re.fullmatch(r"(\d+)(s|m)", stop)
    assert m, f"{rel(COMPOSE)}: services.worker.stop_grace_period {stop!r}: expected e.g. 60s"
    seconds = int(m[1]) * (60 if m[2] == "m" else 1)
    lease = float(compose_env("worker").get("HWNAS_LEASE_SECONDS", lease))
    assert seconds >= lease, f"{rel(COMPOSE)}: services.worker.stop_grace_period {stop} < lease {lease:g} s"


def test_replicas() -> None:
    for svc in ("api", "worker"):
        replicas = int(service(svc).get("deploy", {}).get("replicas", 1))
        assert replicas >= 2, f"{rel(COMPOSE)}: services.{svc}.deploy.replicas is {replicas}, expected 2"
    for name in (K8S_API, K8S_WORKER):
        _, doc = k8s_object("Deployment", name)
        assert doc["spec"]["replicas"] >= 2, f"{rel(K8S)}: Deployment {name} spec.replicas < 2"


# ================================================================ Ray
def test_ray_auth_mode_is_one_deliberate_value() -> None:
    values: dict[str, Any] = {}
    for svc in (*RAY_NODES, *DRIVERS):
        values[f"{rel(COMPOSE)}: services.{svc}"] = compose_env(svc).get("RAY_AUTH_MODE")
    ray_containers = [(f, lbl, c) for f, lbl, c, _ in containers() if lbl.startswith("RayCluster")]
    assert ray_containers, f"{rel(K8S)}: no RayCluster containers"
    for file, label, c in ray_containers:
        values[f"{rel(K8S)}/{file}: {label}"] = k8s_env(c, file).get("RAY_AUTH_MODE")
    for name in (K8S_API, K8S_WORKER):
        file, c, _ = workload_container(name)
        values[f"{rel(K8S)}/{file}: {name}"] = k8s_env(c, file).get("RAY_AUTH_MODE")
    unset = [w for w, v in values.items() if not v]
    assert not unset, f"RAY_AUTH_MODE is not set on: {unset}"
    distinct = set(values.values())
    assert len(distinct) == 1, "RAY_AUTH_MODE differs: " + "; ".join(f"{w} = {v}" for w, v in values.items())
    mode = distinct.pop()
    assert mode in ("disabled", "token"), f"RAY_AUTH_MODE {mode!r}: expected disabled or token"
    if mode == "token":
        for svc in (*RAY_NODES, *DRIVERS):
            assert compose_env(svc).get("RAY_AUTH_TOKEN"), f"{rel(COMPOSE)}: services.{svc}: no RAY_AUTH_TOKEN"
        for name in (K8S_API, K8S_WORKER):
            file, c, _ = workload_container(name)
            assert k8s_env(c, file).get("RAY_AUTH_TOKEN"), f"{rel(K8S)}/{file}: {name}: no RAY_AUTH_TOKEN"
    else:  # no tokens: only this app's pods may reach the Ray pods
        _, rc = k8s_object("RayCluster", "hwnas-ray")
        policies = [(f, d) for f, d in k8s_objects() if d.get("kind") == "NetworkPolicy"]
        assert policies, f"{rel(K8S)}: RAY_AUTH_MODE=disabled without a NetworkPolicy in front of the Ray pods"
        file, policy = policies[0]
        assert policy["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": rc["metadata"]["name"]}, (
            f"{rel(K8S)}/{file}: the NetworkPolicy does not select the RayCluster's pods"
        )
        allowed = [peer["podSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        for _, label, template, _ in pod_specs():
            labels = template["metadata"].get("labels", {})
            assert any(all(labels.get(k) == v for k, v in sel.items()) for sel in allowed), (
                f"{rel(K8S)}/{file}: the NetworkPolicy shuts out {label} (labels {labels})"
            )
        for svc in RAY_NODES:
            assert not service(svc).get("ports"), f"{rel(COMPOSE)}: services.{svc} publishes Ray ports without auth"


def test_drivers_reach_the_ray_head_through_its_client_server() -> None:
    # compose: ray://<the head service>:<its --ray-client-server-port>
    heads = [s for s in RAY_NODES if "--head" in compose_command(s)]
    assert heads == ["ray-head"], f"{rel(COMPOSE)}: expected ray-head to run `ray start --head`, found {heads}"
    head = compose_command("ray-head")
    assert head[:2] == ["ray", "start"] and "--block" in head, f"{rel(COMPOSE)}: services.ray-head.command {head}"
    assert option(head, "--num-cpus") == "0", f"{rel(COMPOSE)}: services.ray-head should have --num-cpus=0"
    client_port = int(option(head, "--ray-client-server-port") or 10001)
    gcs_port = int(option(head, "--port") or 6379)
    for svc in DRIVERS:
        address = urlsplit(compose_env(svc)["HWNAS_RAY_ADDRESS"])
        assert address.scheme == "ray", (
            f"{rel(COMPOSE)}: services.{svc}: HWNAS_RAY_ADDRESS {address.geturl()}: a driver that is not a Ray node "
            "attaches through the Ray Client (ray://host:10001); ray.init('host:6379') wants a local raylet"
        )
        assert (address.hostname, address.port) == ("ray-head", client_port), (
            f"{rel(COMPOSE)}: services.{svc}: HWNAS_RAY_ADDRESS {address.geturl()} is not ray-head:{client_port}"
        )
    worker = compose_command("ray-worker")
    assert option(worker, "--address") == f"ray-head:{gcs_port}", (
        f"{rel(COMPOSE)}: services.ray-worker joins {option(worker, '--address')}, not the head's GCS ray-head:{gcs_port}"
    )
    # Kubernetes: ray://<cluster>-head-svc:<client port>, the port declared on the head container
    rc_file, rc = k8s_object("RayCluster", "hwnas-ray")
    assert rc["apiVersion"] == "ray.io/v1", f"{rel(K8S)}/{rc_file}: apiVersion {rc['apiVersion']}, expected ray.io/v1"
    head_spec = rc["spec"]["headGroupSpec"]
    params = head_spec["rayStartParams"]
    assert params.get("num-cpus") == "0", f'{rel(K8S)}/{rc_file}: headGroupSpec.rayStartParams.num-cpus should be "0"'
    assert all(isinstance(v, str) for v in params.values()), f"{rel(K8S)}/{rc_file}: rayStartParams must be strings"
    client_port = int(params.get("ray-client-server-port", "10001"))
    head_ports = [p["containerPort"] for p in head_spec["template"]["spec"]["containers"][0].get("ports", [])]
    assert client_port in head_ports, f"{rel(K8S)}/{rc_file}: the head container does not declare port {client_port}"
    address = urlsplit(configmap()["HWNAS_RAY_ADDRESS"])
    expected = (f"{rc['metadata']['name']}-head-svc", client_port)
    assert address.scheme == "ray" and (address.hostname, address.port) == expected, (
        f"{rel(K8S)}/configmap.yaml: HWNAS_RAY_ADDRESS {address.geturl()}, expected ray://{expected[0]}:{expected[1]}"
    )
    groups = rc["spec"].get("workerGroupSpecs", [])
    assert groups, f"{rel(K8S)}/{rc_file}: no workerGroupSpecs"
    for g in groups:
        assert 1 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], (
            f"{rel(K8S)}/{rc_file}: group {g['groupName']}: expected 1 <= minReplicas <= replicas <= maxReplicas"
        )
    for _, label, c, _ in containers():
        if label.startswith("RayCluster"):
            assert c.get("resources", {}).get("limits"), f"{rel(K8S)}/{rc_file}: {label}: no resource limits"
            assert c.get("livenessProbe") and c.get("readinessProbe"), (
                f"{rel(K8S)}/{rc_file}: {label}: without probes of its own KubeRay injects ones calling wget"
            )


# ================================================================ the Dockerfile against pyproject and the Makefile
def test_dockerfile_installs_torch_pin_from_a_cpu_index() -> None:
    pin = torch_pin()
    torch = [(s, t) for s, t in pip_installs() if any(re.fullmatch(r"torch(==.*)?", x) for x in t)]
    assert torch, f"{rel(DOCKERFILE)}: no `pip install torch==...`"
    for _, tokens in torch:
        assert f"torch=={pin}" in tokens, (
            f"{rel(DOCKERFILE)}: installs {[x for x in tokens if 'torch' in x]}, but pyproject.toml pins torch=={pin}"
        )
        index = option(tokens, "--index-url") or option(tokens, "--extra-index-url")
        assert index and re.fullmatch(r"https://download\.pytorch\.org/whl/cpu/?", index), (
            f"{rel(DOCKERFILE)}: torch comes from {index}, not the PyTorch CPU index"
        )


def test_dockerfile_installs_the_makefile_project_without_test_or_dev_extras() -> None:
    make_vars = makefile_vars()
    assert "PROJECT" in make_vars and "EXTRAS" in make_vars, "Makefile: PROJECT and EXTRAS are not defined"
    install = [line for line in makefile_recipe(r"^\$\(STAMP\):") if "pip install" in line]
    assert len(install) == 1 and "$(PROJECT)" in install[0], (
        f"Makefile: the $(STAMP) rule should install $(PROJECT): {install}"
    )
    make_project = make_expand("$(PROJECT)")
    make_tokens = shlex.split(make_expand(install[0]))
    assert f"{make_project}[{make_vars['EXTRAS']}]" in make_tokens, f"Makefile: {install[0]} does not install PROJECT"

    def project_token(tokens: list[str]) -> str | None:
        return next((t for t in tokens if t == make_project or t.startswith(make_project + "[")), None)

    projects = [(s, t) for s, t in pip_installs() if project_token(t)]
    assert len(projects) == 1, f"{rel(DOCKERFILE)}: expected one `pip install {make_project}`, found {projects}"
    _, tokens = projects[0]
    token = project_token(tokens)
    assert token == make_project, (
        f"{rel(DOCKERFILE)}: installs {token}; the image takes the Makefile's project "
        f"{make_project} without extras (the Makefile adds [{make_vars['EXTRAS']}])"
    )
    assert "-e" not in tokens and "--editable" not in tokens, f"{rel(DOCKERFILE)}: the image's install is editable"
    extras = set(make_vars["EXTRAS"].split(","))
    assert extras <= set(pyproject()["project"]["optional-dependencies"]), (
        f"Makefile: EXTRAS {sorted(extras)} are not all extras of pyproject.toml"
    )
    # the files pip needs for `.`: pyproject.toml, its readme, and the packages it lists
    copied = {
        src
        for _, rest in docker_instructions("COPY")
        if not rest.startswith("--from")
        for src in shlex.split(rest)[:-1]
    }
    needed = {"pyproject.toml", pyproject()["project"]["readme"]}
    needed |= {p.rstrip("*") for p in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert needed <= copied, f"{rel(DOCKERFILE)}: COPY lacks {sorted(needed - copied)} for `pip install .`"


def test_dockerfile_base_user_packages_and_bundles() -> None:
    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    for stage, base in docker_instructions("FROM"):
        image = base.split()[0]
        m = re.fullmatch(r"python:(\d+\.\d+)-[\w.-]+", image)
        assert m, f"{rel(DOCKERFILE)}: stage {stage} FROM {image}: expected python:3.11-*"
        assert requires.contains(m[1] + ".0"), (
            f"{rel(DOCKERFILE)}: FROM {image}: Python {m[1]} is outside pyproject's requires-python {requires}"
        )
    users = docker_instructions("USER", final_stage())
    assert users, f"{rel(DOCKERFILE)}: no USER in the final stage (it would run as root)"
    user = users[-1][1].split(":")[0]
    assert user not in ("root", "0"), f"{rel(DOCKERFILE)}: USER {user} is root"
    for name in (K8S_API, K8S_WORKER):
        file, _, template = workload_container(name)
        ctx = template["spec"].get("securityContext", {})
        assert ctx.get("runAsNonRoot") is True and str(ctx.get("runAsUser")) == user, (
            f"{rel(K8S)}/{file}: {name}: securityContext should be runAsNonRoot with runAsUser {user} (Dockerfile)"
        )
    file, c, _ = workload_container(K8S_API)
    assert c.get("securityContext", {}).get("readOnlyRootFilesystem") is True, (
        f"{rel(K8S)}/{file}: {K8S_API}: readOnlyRootFilesystem should be true"
    )
    env = docker_env()
    assert env.get("HWNAS_HOST") == "0.0.0.0" and env.get("OMP_NUM_THREADS") == "1", (
        f"{rel(DOCKERFILE)}: ENV should set HWNAS_HOST=0.0.0.0 and OMP_NUM_THREADS=1, has {env}"
    )
    # the Makefile's system packages (the datasets the service reads) are apt-installed in the final stage
    apt = " ".join(rest for _, rest in docker_instructions("RUN", final_stage()) if "apt-get install" in rest)
    for package in make_expand("$(SYSTEM_PACKAGES)").split():
        assert re.search(rf"\b{re.escape(package)}\b", apt), (
            f"{rel(DOCKERFILE)}: the final stage does not apt-get install {package} (Makefile SYSTEM_PACKAGES)"
        )
    # the dashboard bundles: the Makefile's module, run in a stage that has npm, copied into the final stage
    bundle_cmd = next(line for line in makefile_recipe(r"^\$\(BUNDLES\):") if "-m " in line)
    module = option(shlex.split(bundle_cmd), "-m")
    runs = [s for s, rest in docker_instructions("RUN") if f"-m {module}" in rest]
    assert runs, f"{rel(DOCKERFILE)}: never runs `python -m {module}` (the Makefile's bundles)"
    npm = [s for s, rest in docker_instructions("RUN") if re.search(r"apt-get install .*\bnpm\b", rest)]
    assert set(runs) <= set(npm), f"{rel(DOCKERFILE)}: runs {module} in a stage without npm"
    if final_stage() not in runs:
        assert any(rest.startswith("--from=") for _, rest in docker_instructions("COPY", final_stage())), (
            f"{rel(DOCKERFILE)}: the bundles are built in another stage but nothing is copied from it"
        )


def _ignored(path: str, patterns: list[str]) -> bool:
    """Does a .dockerignore (patterns in order, `!` re-includes) exclude ``path`` or a parent of it?"""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        rx = ""
        i = 0
        while i < len(body):
            if body.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif body.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif body[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif body[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(body[i]), i + 1
        if any(re.fullmatch(rx, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_junk_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "hwnas.db",
        "hwnas-data/exports/x.onnx",
        "benchmarks/results/a.json",
        "docs/screenshots/a.png",
        "service/__pycache__/x.pyc",
        "node_modules/x/package.json",
        "service/dashboard/static/vendor/plotly.json",
        "deploy/.env",
    ):
        assert _ignored(path, patterns), f"{rel(DOCKERIGNORE)}: does not exclude {path}"
    for _, rest in docker_instructions("COPY"):
        if rest.startswith("--from"):
            continue
        for src in shlex.split(rest)[:-1]:
            assert (ROOT / src).exists(), f"{rel(DOCKERFILE)}: COPY {src}: no such file in the repository"
            assert not _ignored(src, patterns), f"{rel(DOCKERIGNORE)}: excludes {src}, which {rel(DOCKERFILE)} copies"
            if (ROOT / src).is_dir():
                for f in (ROOT / src).rglob("*.py"):
                    if "__pycache__" not in f.parts:
                        assert not _ignored(rel(f), patterns), f"{rel(DOCKERIGNORE)}: excludes {rel(f)}"


# ================================================================ kustomize
def test_kustomization_lists_every_manifest() -> None:
    kustomization = k8s_files()["kustomization.yaml"][0]
    resources = kustomization.get("resources", [])
    for resource in resources:
        assert (K8S / resource).is_file(), f"{rel(K8S)}/kustomization.yaml: resource {resource} does not exist"
    unlisted = set(k8s_files()) - set(resources) - {"kustomization.yaml"}
    assert unlisted == {"secret.example.yaml"}, (
        f"{rel(K8S)}/kustomization.yaml: manifests not in resources: {sorted(unlisted - {'secret.example.yaml'})} "
        "(only secret.example.yaml stays out, so that applying never overwrites the real Secret)"
    )
    kinds = {d.get("kind") for name in resources for d in k8s_files()[name]}
    for kind in ("ConfigMap", "Deployment", "Service", "Job", "RayCluster"):
        assert kind in kinds, f"{rel(K8S)}/kustomization.yaml: no {kind} among the resources"


def test_kustomize_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")
    proc = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kubectl kustomize {rel(K8S)} failed: {proc.stderr.strip()}"
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    listed = [d for name in k8s_files()["kustomization.yaml"][0]["resources"] for d in k8s_files()[name]]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in listed
    ), f"kubectl kustomize {rel(K8S)}: other objects than listed"
    images = set(re.findall(r"^\s*image:\s*(\S+)", proc.stdout, flags=re.M))
    assert len(images) == 1, f"kubectl kustomize {rel(K8S)}: renders several images {sorted(images)}"


# ================================================================ deploy/README.md
def test_readme_commands_and_payload_are_real(routes: dict[str, set[str]]) -> None:
    from nas.config import SearchConfig

    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    templates = [re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) for path in routes]
    urls = re.findall(r"http://127\.0\.0\.1:8000(/[^\s'\"`)]*)", text)
    assert urls, "deploy/README.md: the smoke test requests nothing"
    for path in urls:
        assert any(re.fullmatch(t, path) for t in templates), f"deploy/README.md: {path} is not a route of the app"
    payloads = re.findall(r"--data '(\{.*?\})'", text)
    assert payloads, "deploy/README.md: the smoke test submits no JSON job"
    example = yaml.safe_load((ROOT / "examples" / "proxy-latency.yaml").read_text(encoding="utf-8"))
    for payload in payloads:
        data = json.loads(payload)
        SearchConfig.model_validate(data)
        assert data == example, "deploy/README.md: the smoke test's job is not examples/proxy-latency.yaml"
    blocks = "\n".join(re.findall(r"^```(?:sh|bash)?\n(.*?)^```", text, flags=re.M | re.S))
    commands = re.findall(r"(?<![\w/-])(hwnas (?:keys|submit|status|db|worker|serve)\b[^\n#|]*)", blocks)
    assert any(c.startswith("hwnas keys create") for c in commands), "deploy/README.md: no `hwnas keys create`"
    for command in commands:
        argv = shlex.split(command.rstrip("\\ ").strip())
        parse_cli(argv, "deploy/README.md")
