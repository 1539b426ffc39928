"""Computations and latency measurements on one host take turns (latency_tables.portable.compute_slot)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from latency_tables.portable import compute_slot, lock_path, measurement_lock


@pytest.fixture(autouse=True)
def _private_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_MEASURE_LOCK", str(tmp_path / "measure.lock"))


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


def _wait_for(flag: threading.Event | Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not (flag.is_set() if isinstance(flag, threading.Event) else flag()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_measurement_waits_for_the_computation_under_way_and_says_so() -> None:
    events: list[str] = []
    computing, release = threading.Event(), threading.Event()

    def compute() -> None:
        with compute_slot():
            computing.set()
            release.wait(20)
            events.append("computation ends")

    worker = _in_thread(compute)
    _wait_for(computing)
    told: list[str] = []

    def measure() -> None:
        with measurement_lock(on_wait=told.append):
            events.append("measurement starts")

    measurer = _in_thread(measure)
    _wait_for(lambda: bool(told))
    assert told == [f"waiting for the computations under way on this host to finish ({lock_path()})"]
    release.set()
    worker.join(20)
    measurer.join(20)
    assert events == ["computation ends", "measurement starts"]


def test_no_computation_starts_while_a_measurement_is_queued() -> None:
    """A stream of computations cannot keep a measurement waiting: once it queues, new ones wait behind it."""
    events: list[str] = []
    computing, release, queued = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with compute_slot():
            computing.set()
            release.wait(20)
            events.append("first computation ends")

    def measure() -> None:
        with measurement_lock(on_wait=lambda message: queued.set()):
            events.append("measurement")
            time.sleep(0.2)

    def second() -> None:
        with compute_slot():
            events.append("second computation starts")

    threads = [_in_thread(first)]
    _wait_for(computing)
    threads.append(_in_thread(measure))
    _wait_for(queued)
    threads.append(_in_thread(second))
    time.sleep(0.3)
    assert events == []  # the second waits at the gate although only a shared lock is held
    release.set()
    for t in threads:
        t.join(20)
    assert events == ["first computation ends", "measurement", "second computation starts"]


def test_a_process_that_computes_can_measure_and_slots_nest() -> None:
    done = threading.Event()

    def nested() -> None:
        with compute_slot(), compute_slot():  # one share, held once
            with measurement_lock(quiet=True):  # its own share is given up meanwhile: no deadlock
                pass
            done.set()

    t = _in_thread(nested)
    t.join(20)
    assert done.is_set()
    with measurement_lock(quiet=True):  # and given back: nothing is left held
        pass


def test_a_search_worker_does_not_evaluate_while_this_host_measures() -> None:
    from nas.evaluate import EvalSettings, evaluate
    from searchspace.spec import load_space

    arch = load_space("mobilenetv2-cifar").sample(0).encode()
    settings = EvalSettings(dataset={"name": "synthetic"})
    assert evaluate(arch, ["proxy:params"], settings)["proxy:params"].error is None  # imports done: it takes ms
    holding, release = threading.Event(), threading.Event()
    finished: list[float] = []

    def measure() -> None:
        with measurement_lock(quiet=True):
            holding.set()
            release.wait(20)
            finished.append(time.monotonic())

    t = _in_thread(measure)
    _wait_for(holding)
    threading.Timer(1.5, release.set).start()
    result = evaluate(arch, ["proxy:params"], settings)
    evaluated = time.monotonic()
    t.join(20)
    assert result["proxy:params"].error is None
    assert finished and evaluated >= finished[0]
