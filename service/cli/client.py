"""The thin client: ``hwnas submit|jobs|status|pareto|download|cancel`` against a running server.

``--server`` (or HWNAS_SERVER, default http://127.0.0.1:8000) and
``--api-key`` (or HWNAS_API_KEY). The server's problem details become one
``hwnas: error:`` line; --json prints the API's own response models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from service.cli import AddCommand, CliError, print_json
from service.cli.tables import fmt_value, render_table

DEFAULT_SERVER = "http://127.0.0.1:8000"


class Client:
    def __init__(self, server: str | None, api_key: str | None, timeout: float = 60.0) -> None:
        import httpx

        self.server = (server or os.environ.get("HWNAS_SERVER") or DEFAULT_SERVER).rstrip("/")
        key = api_key or os.environ.get("HWNAS_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.ConnectError:
            raise CliError(
                f"cannot reach the server at {self.server} (start one with `make serve`, or pass "
                "--server / HWNAS_SERVER)"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"{self.server}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            try:
                problem = r.json()
                detail = problem.get("detail") or problem.get("title")
            except ValueError:
                detail = r.text[:200]
            raise CliError(f"{r.status_code} {detail}")
        return r

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()


def _client(args: argparse.Namespace) -> Client:
    return Client(args.server, args.api_key)


def cmd_submit(args: argparse.Namespace) -> None:
    from nas.config import SearchConfig

    config = SearchConfig.from_file(args.config)  # the same checks as `hwnas search`, before anything is sent
    data = config.model_dump(mode="json", exclude_none=True)
    if args.name:
        data["name"] = args.name
    job = _client(args).json("POST", "/api/v1/jobs", json=data)
    if args.json:
        print_json(job)
    else:
        print(job["id"])
        print(f"(queued {job['name']!r}; watch it with `hwnas status {job['id']} --watch`)", file=sys.stderr)
    if args.watch:
        _watch(_client(args), job["id"], quiet=args.json)


def cmd_jobs(args: argparse.Namespace) -> None:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    page = _client(args).json("GET", "/api/v1/jobs", params=params)
    if args.json:
        print_json(page)
        return
    rows = [
        [
            j["id"],
            j["name"][:30],
            j["status"],
            f"{j['progress']['done']}/{j['progress']['budget_trials'] or '-'}",
            j["front_size"],
            fmt_value(j["hypervolume"]),
            j["created"][:19].replace("T", " "),
        ]
        for j in page["data"]
    ]
    print(render_table(["id", "name", "status", "trials", "front", "hypervolume", "created"], rows, {3, 4, 5}))
    if page["next_cursor"]:
        print(f"({page['count']} jobs in all; --limit shows more)")


def _line(job: dict[str, Any]) -> str:
    if job["status"] == "running" and not job["progress"]["done"] and job.get("notes"):
        return f"running: {job['notes'][-1]}"  # before the first trial: e.g. building this host's latency table
    best = " ".join(f"{k}={fmt_value(v)}" for k, v in job["best"].items())
    return f"{job['status']}: front {job['front_size']} hv={fmt_value(job['hypervolume'])} best {best}"


def latency_warnings(job: dict[str, Any]) -> list[str]:
    """One line per latency profile of ``job`` (its API answer) predicted from a table of another host."""
    return [t["warning"] for t in job.get("latency_tables", []) if t.get("foreign") and t.get("warning")]


def _watch(client: Client, job_id: str, quiet: bool = False) -> dict[str, Any]:
    """Follow the job's server-sent events (polling if the stream breaks) until it finishes."""
    from service.cli.progress import ProgressBar

    bar = ProgressBar(f"job {job_id[:8]}", stream=sys.stderr)
    job: dict[str, Any] = client.json("GET", f"/api/v1/jobs/{job_id}")

    def show(j: dict[str, Any]) -> None:
        if not quiet:
            total = j["progress"]["budget_trials"] or max(j["progress"]["done"], 1)
            bar(
                min(j["progress"]["done"], total - 1) if j["status"] in ("queued", "running") else total,
                total,
                _line(j),
            )

    finished = ("succeeded", "failed", "cancelled")
    while job["status"] not in finished:
        try:
            with client.http.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=None) as stream:
                for raw in stream.iter_lines():
                    if raw.startswith("data:"):
                        job = json.loads(raw[5:])
                        show(job)
        except Exception:  # noqa: BLE001 - a broken stream falls back to polling
            time.sleep(1.0)
            job = client.json("GET", f"/api/v1/jobs/{job_id}")
            show(job)
    show(job)
    return job


def cmd_status(args: argparse.Namespace) -> None:
    client = _client(args)
    job = _watch(client, args.job, quiet=args.json) if args.watch else client.json("GET", f"/api/v1/jobs/{args.job}")
    if args.json:
        print_json(job)
        return
    p = job["progress"]
    print(f"job {job['id']} ({job['name']}): {job['status']}")
    print(
        f"  trials {p['done']}/{p['budget_trials'] or '-'}, {p['elapsed']:.0f} s, front {job['front_size']}, "
        f"hypervolume {fmt_value(job['hypervolume'])}"
    )
    for metric, value in job["best"].items():
        print(f"  best {metric}: {fmt_value(value)}")
    if job["error"]:
        print(f"  error: {job['error']}")
    for note in job["notes"]:
        print(f"  note: {note}")
    for warning in latency_warnings(job):
        print(f"  warning: {warning}")
    if job["status"] == "failed":
        raise CliError(f"job {job['id']} failed: {job['error']}")


def cmd_pareto(args: argparse.Namespace) -> None:
    front = _client(args).json("GET", f"/api/v1/jobs/{args.job}/pareto")
    if args.json:
        print_json(front)
        return
    names = [o["metric"] for o in front["objectives"]]
    others = sorted({m for p in front["data"] for m in p["metrics"]} - set(names))
    rows = [
        [p["number"], p["arch_id"], *[fmt_value(p["metrics"].get(n)) for n in [*names, *others]]] for p in front["data"]
    ]
    print(render_table(["trial", "arch_id", *names, *others], rows, set(range(2, 2 + len(names) + len(others)))))
    print(f"{front['count']} nets on the front; `hwnas download ARCH_ID --format onnx -o net.onnx` fetches one")
    for warning in front.get("latency_warnings", []):
        print(f"warning: {warning}")


def cmd_download(args: argparse.Namespace) -> None:
    params = {"format": args.format, **({"job": args.job} if args.job else {})}
    r = _client(args).request("GET", f"/api/v1/architectures/{args.arch_id}/download", params=params)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(r.content)
    tmp.replace(out)
    print(f"wrote {out} ({args.format}, {len(r.content):,} bytes)")


def cmd_cancel(args: argparse.Namespace) -> None:
    job = _client(args).json("POST", f"/api/v1/jobs/{args.job}/cancel")
    print(f"job {job['id']}: {job['status']}{' (stopping)' if job['status'] == 'running' else ''}")


def add_commands(sub: Any, add: AddCommand) -> None:
    def client_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--server", help=f"server URL (default $HWNAS_SERVER or {DEFAULT_SERVER})")
        p.add_argument("--api-key", help="API key (default $HWNAS_API_KEY)")
        return p

    p = client_options(add("submit", cmd_submit, "submit a search config (YAML) to a server as a job"))
    p.add_argument("config")
    p.add_argument("--name", help="job name (default: the config's name)")
    p.add_argument("--watch", action="store_true", help="follow it until it finishes")
    p.add_argument("--json", action="store_true")
    p = client_options(add("jobs", cmd_jobs, "your jobs on a server, newest first"))
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p = client_options(add("status", cmd_status, "a job's state, progress and best values"))
    p.add_argument("job")
    p.add_argument("--watch", action="store_true", help="a progress bar until the job finishes")
    p.add_argument("--json", action="store_true")
    p = client_options(add("pareto", cmd_pareto, "a job's Pareto front"))
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p = client_options(add("download", cmd_download, "download a net of one of your jobs"))
    p.add_argument("arch_id")
    p.add_argument("--format", choices=["json", "onnx", "onnx-int8", "pytorch", "card"], default="onnx")
    p.add_argument("--job", help="which of your jobs the card and int8 calibration come from")
    p.add_argument("-o", "--output", required=True)
    p = client_options(add("cancel", cmd_cancel, "cancel a queued or running job"))
    p.add_argument("job")
