"""Ray execution: a local Ray with two workers (timeouts included), and a two-node cluster on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.config import SearchConfig
from nas.executors import RayExecutor
from nas.search import Search
from tests.specs import ALL_BLOCKS

pytestmark = pytest.mark.slow  # a Ray instance per test, seconds to start

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def config(**over: object) -> SearchConfig:
    data = {
        "name": f"ray-{uuid.uuid4().hex[:6]}",
        "space": ALL_BLOCKS,
        "budget": {"trials": 8},
        "workers": 2,
        "seed": 0,
        "objectives": [
            {"metric": "proxy:naswot", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        "dataset": {"name": "synthetic", "options": {"size": 16}},
        "proxy": {"batch_size": 16},
    }
    data.update(over)
    return SearchConfig.parse(data)


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in RAY_ENV.items():
        monkeypatch.setenv(k, v)


def test_local_ray_matches_serial_and_times_out(tmp_path: Path) -> None:
    import ray

    serial = Search(config(workers=1, name="serial"), f"sqlite:///{tmp_path / 'a.db'}").run()
    # generous: a worker's first evaluation imports torch, and a loaded machine (CI next to a benchmark) is slow
    executor = RayExecutor(2, timeout=120.0)
    try:
        assert ray.available_resources().get("CPU") == 2
        parallel = Search(config(name="serial"), f"sqlite:///{tmp_path / 'b.db'}", executor=executor).run()
        values = {t.arch_id: t.metrics for t in serial.trials}
        # parallel asks differ from serial ones, but a net measured in both gets the same numbers
        common = [t for t in parallel.trials if t.arch_id in values]
        assert len(parallel.trials) == 8 and all(t.state == "COMPLETE" for t in parallel.trials)
        assert all(values[t.arch_id] == t.metrics for t in common)
        here = ray.get_runtime_context().get_node_id()
        assert all(t.node is None for t in serial.trials) and {t.node for t in parallel.trials} == {here}
        slow = config(
            objectives=[
                {"metric": "train:synthetic", "direction": "maximize"},
                {"metric": "params", "direction": "minimize"},
            ],
            training={"steps": 100000, "batch_size": 8},
            budget={"trials": 2},
        )
        executor.timeout = 3.0
        result = Search(slow, f"sqlite:///{tmp_path / 'c.db'}", executor=executor).run()
        assert [t.state for t in result.trials] == ["FAIL", "FAIL"]
        assert all("timed out after 3 s" in (t.error or "") for t in result.trials)
    finally:
        executor.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def two_node_cluster() -> Iterator[str]:
    """`ray start --head` plus a second `ray start --address`, both on loopback, stopped by PID afterwards."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = Path(f"/tmp/hwr-{uuid.uuid4().hex[:6]}")
    env = {**os.environ, **RAY_ENV}
    common = ["--num-cpus", "1", "--memory", str(512 * 2**20), "--object-store-memory", str(100 * 2**20), "--block"]
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--include-dashboard=false",
            "--temp-dir",
            str(temp),
            *common,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    worker = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        worker = subprocess.Popen(
            [ray_bin, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield address
    finally:
        for proc in (worker, head):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(temp, ignore_errors=True)


def test_search_on_a_two_node_cluster(two_node_cluster: str, tmp_path: Path) -> None:
    import ray

    cfg = config(ray_address=two_node_cluster)
    executor = RayExecutor(2, address=two_node_cluster, timeout=120.0)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len([n for n in ray.nodes() if n["Alive"]]) < 2:
            time.sleep(0.5)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2
        result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}", executor=executor).run()
    finally:
        executor.close()
    assert len(result.trials) == 8 and all(t.state == "COMPLETE" for t in result.trials)
    # every trial names the node that evaluated it; one CPU per node and two in flight: both nodes worked
    assert {t.node for t in result.trials} == nodes


def test_a_killed_worker_is_retried(tmp_path: Path) -> None:
    """SIGKILL the process running an evaluation: Ray reruns the task and the trial still completes."""
    import signal
    import threading

    cfg = config(
        workers=1,
        budget={"trials": 2},
        training={"steps": 60, "batch_size": 8},
        objectives=[
            {"metric": "train:synthetic", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
    )
    executor = RayExecutor(1, retries=2, timeout=300.0)  # a restarted worker imports torch: slow on a busy VM
    killed: list[int] = []

    def kill_first_evaluation() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if b"ray::_remote_evaluate" in cmdline:  # Ray names a worker after the task it runs
                    time.sleep(0.5)  # mid-evaluation
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed.append(int(entry.name))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_evaluation)
    try:
        killer.start()
        result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}", executor=executor).run()
    finally:
        killer.join()
        executor.close()
    assert killed, "no evaluation process was found to kill"
    assert [t.state for t in result.trials] == ["COMPLETE", "COMPLETE"], [t.error for t in result.trials]
