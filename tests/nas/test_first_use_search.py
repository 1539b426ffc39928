"""The latency table a search predicts with: this host's, built on first use before the first trial; the shipped
one or a file when the config says so; and every latency from a table of another host flagged in the results.

Every test runs in its own table world (no shipped tables unless it saves one, an empty user folder). The first
use is faked where only the order of events matters; one test builds a real (tiny) table and finds it again.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import searchspace as ss
from latency_tables import first_use
from latency_tables import host as host_module
from latency_tables import table as table_module
from latency_tables.first_use import HostTable
from latency_tables.host import REFERENCE_LAYERS, HostCheck
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import space_layers
from latency_tables.table import Entry, LatencyTable, user_table_dir
from nas.config import ConfigError, SearchConfig
from nas.objectives import Objectives
from nas.results import save_result
from nas.search import Search, SearchError
from nas.table_choice import TableEvent
from searchspace.architecture import Architecture
from tests.specs import TINY_SPEC

pytestmark = pytest.mark.usefixtures("isolated_tables")

FP32 = "ort-cpu-fp32-t1"
LATENCY = f"latency:{FP32}"


def tiny_table(
    profile: str = FP32, host: HostInfo | None = None, ms: float = 0.1, reference: bool = False
) -> LatencyTable:
    """A table holding every layer of the tiny space at ``ms`` each (and the reference layers, on request)."""
    keys = list(space_layers(ss.load_space(TINY_SPEC)))
    keys += list(REFERENCE_LAYERS) if reference else []
    return LatencyTable(
        profile=DeviceProfile.parse(profile),
        host=host or HostInfo.current(),
        entries={k: Entry(median_ms=ms, p10_ms=ms, p90_ms=ms, runs=10) for k in keys},
    )


def other_host() -> HostInfo:
    return HostInfo.current().model_copy(update={"family": "not-this-family"})


def save_shipped(table: LatencyTable) -> Path:
    """``table`` as hwnas' shipped table of its profile (the test's own PACKAGE_DATA)."""
    return table.save(table_module.PACKAGE_DATA / table.default_filename())


def config(**over: Any) -> SearchConfig:
    data: dict[str, Any] = {
        "name": f"t-{uuid.uuid4().hex[:8]}",
        "space": TINY_SPEC,
        "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": LATENCY, "direction": "minimize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
        "workers": 1,
        "seed": 2,
    }
    data.update(over)
    return SearchConfig.parse(data)


class FakeFirstUse:
    """ensure_host_table replaced: saves a same-host table of the tiny space, reports 3 layers and 2 nets
    through ``progress`` like the real one, and logs every call in ``events``."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        events: list[str],
        layers: int = 3,
        nets: int = 2,
        hook: Callable[[], None] | None = None,
    ) -> None:
        self.events = events
        self.layers, self.nets = layers, nets
        #: called after each progress report (a test looks at what the search made of it)
        self.hook = hook or (lambda: None)
        monkeypatch.setattr(first_use, "ensure_host_table", self)

    def __call__(self, profile: str, space: Any, *, progress: Any = None, **_: Any) -> HostTable:
        self.events.append("build")
        table = tiny_table(profile)
        path = table.save(user_table_dir() / table.default_filename())
        for i in range(self.layers):
            if progress:
                progress(i, self.layers, f"layer {i}")
                self.hook()
        for i in range(self.nets):
            if progress:
                progress(i, self.nets, f"round 1 net{i}")
                self.hook()
        return HostTable(
            path=path,
            table=table,
            check=HostCheck(table.name, "same"),
            replaced=None,
            layers_measured=self.layers,
            nets_measured=self.nets,
            seconds=0.5,
        )


def log_evaluations(monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
    real = Objectives.cheap

    def cheap(self: Objectives, arch: Any) -> Any:
        events.append("evaluate")
        return real(self, arch)

    monkeypatch.setattr(Objectives, "cheap", cheap)


def no_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("ensure_host_table must not run for this config")

    monkeypatch.setattr(first_use, "ensure_host_table", refuse)


# ------------------------------------------------------------ the config
def test_latency_table_names_a_mode_or_a_table_file(tmp_path: Path) -> None:
    assert config().latency_table == "auto"
    for mode in ("host", "auto"):
        assert config(latency_table=mode).latency_table == mode
    mine = tiny_table().save(tmp_path / "mine.json.gz")
    assert config(latency_table=str(mine)).latency_table == str(mine)
    int8 = tiny_table("ort-cpu-int8-t1").save(tmp_path / "int8.json.gz")
    (tmp_path / "junk.json").write_text("{}")
    bad = {
        "fastest": "latency_table: expected auto, host, shipped or a table file \\(.json / .json.gz\\), got 'fastest'",
        str(tmp_path / "gone.json.gz"): "latency_table: no table file at .*gone.json.gz",
        str(int8): "latency_table: .*int8.json.gz is a table of ort-cpu-int8-t1, but this search predicts "
        "ort-cpu-fp32-t1",
        str(tmp_path / "junk.json"): "latency_table: .*junk.json is not a readable latency table",
        "shipped": "latency_table: shipped: hwnas ships no table for ort-cpu-fp32-t1 \\(shipped tables: none\\)",
        "": "latency_table: String should have at least 1 character",
    }
    for value, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            config(latency_table=value)
    two = [{"metric": LATENCY, "direction": "minimize"}, {"metric": "latency:ort-cpu-int8-t1", "direction": "minimize"}]
    with pytest.raises(ConfigError, match="but this search predicts ort-cpu-fp32-t1, ort-cpu-int8-t1"):
        config(objectives=two, latency_table=str(mine))


def test_the_default_table_choice_keeps_a_study_its_name() -> None:
    """Configs written before latency_table existed continue their studies; another choice is another study."""
    auto = config(name=None)
    assert "latency_table" not in auto.identity()
    save_shipped(tiny_table(host=other_host()))
    assert config(name=None, latency_table="shipped").study_name() != auto.study_name()


# ------------------------------------------------------------ auto: this host's table, built on first use
def test_auto_builds_this_hosts_table_before_the_first_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_shipped(tiny_table(host=other_host()))  # what there is on a new host: a table of another one
    events: list[str] = []
    FakeFirstUse(monkeypatch, events)
    log_evaluations(monkeypatch, events)
    seen: list[TableEvent] = []
    result = Search(config(), f"sqlite:///{tmp_path / 's.db'}", on_table=seen.append).run()
    assert events[0] == "build" and events.count("build") == 1 and events.count("evaluate") == 4
    assert [e.line() for e in seen if not e.finished] == [
        *[f"latency table {FP32}: measuring this host's layers {i}/3" for i in range(3)],
        *[f"latency table {FP32}: measuring calibration nets {i}/2" for i in range(2)],
    ]
    assert seen[-1].finished and seen[-1].choice is not None and seen[-1].choice.built_now
    chosen = result.latency_tables[FP32]
    assert chosen["source"] == "host" and chosen["built_now"] and not chosen["foreign"]
    assert (chosen["layers_measured"], chosen["nets_measured"], chosen["verdict"]) == (3, 2, "same")
    assert chosen["path"] == str(user_table_dir() / tiny_table().default_filename())
    assert chosen["metrics"] == [LATENCY] and chosen["build_command"] is None and chosen["warning"] is None
    assert result.latency_warnings() == []
    assert any(n.startswith("built this host's latency table") for n in result.notes)
    done = [t for t in result.trials if t.state == "COMPLETE"]
    assert len(done) == 4 and not any(t.latency_foreign for t in result.trials)
    # the latencies are this host's table's: 0.1 ms per layer
    for t in done:
        arch = Architecture.decode(t.arch or "")
        expected = LatencyPredictor(tiny_table(), missing="error").predict_many([arch])[0]
        assert t.metrics[LATENCY] == pytest.approx(expected)


def test_a_real_first_use_build_is_found_again_by_the_resumed_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny space's table measured for real (2 calibration nets): the resumed search measures nothing."""
    save_shipped(tiny_table(host=other_host()))
    monkeypatch.setattr(first_use, "FIRST_USE_NETS", 2)
    # the signature of a table just measured matches it; two training runs beside this test could make it not
    monkeypatch.setattr(host_module, "MEAN_TOLERANCE", 100.0)
    monkeypatch.setattr(host_module, "LAYER_TOLERANCE", 100.0)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    seen: list[TableEvent] = []
    first = Search(config(name="first-use"), storage, on_table=seen.append).run()
    built = first.latency_tables[FP32]
    assert built["source"] == "host" and built["built_now"]
    assert built["layers_measured"] >= len(space_layers(ss.load_space(TINY_SPEC))) and built["nets_measured"] == 2
    assert "instead of" in first.notes[0]  # it says which table it replaced as the one to use
    assert Path(built["path"]).parent == user_table_dir() and Path(built["path"]).exists()
    phases = {e.what for e in seen if not e.finished}
    assert phases == {"measuring this host's layers", "measuring calibration nets"}

    seen.clear()
    again = Search(config(name="first-use", budget={"trials": 6}), storage, on_table=seen.append).run(resume=True)
    found = again.latency_tables[FP32]
    assert found["path"] == built["path"] and not found["built_now"]
    assert (found["layers_measured"], found["nets_measured"]) == (0, 0)
    assert [e.finished for e in seen] == [True]  # no measurement to report
    assert len(again.trials) == 6 and not any(t.latency_foreign for t in again.trials)
    assert not any("may not be comparable" in n for n in again.notes)  # the same table on the same host


def test_auto_on_the_host_a_shipped_table_describes_uses_it_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tiny_table(reference=True)
    table.entries = {k: e.model_copy(update={"passes": 2}) for k, e in table.entries.items()}  # measured in full
    shipped = save_shipped(table)
    monkeypatch.setattr(first_use, "FIRST_USE_NETS", 0)
    monkeypatch.setattr(host_module, "measure_signature", lambda profile, keys, **_: dict.fromkeys(keys, 0.1))
    result = Search(config(), f"sqlite:///{tmp_path / 's.db'}").run()
    chosen = result.latency_tables[FP32]
    assert (chosen["source"], chosen["path"], chosen["verdict"], chosen["built_now"]) == (
        "host",
        str(shipped),
        "same",
        False,
    )
    assert not list(user_table_dir().glob("*.json*"))  # nothing measured, nothing copied
    assert all(t.state == "COMPLETE" and not t.latency_foreign for t in result.trials)


def test_a_stop_during_the_build_ends_the_run_before_any_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    FakeFirstUse(monkeypatch, events)
    log_evaluations(monkeypatch, events)
    search = Search(config(), f"sqlite:///{tmp_path / 's.db'}", stop=lambda: bool(events))
    result = search.run()
    assert search.stopped and events == ["build"] and result.trials == []
    assert "while building a latency table" in result.notes[0]


def stopped_while_another_measures(cfg: SearchConfig, storage: str) -> Any:
    """Run a search while another process holds the host's measurement lock (a job measuring or training), stop
    it once it waits there, and return its result: it must give up the wait, not sit in it."""
    import fcntl
    import threading

    from latency_tables.portable import lock_path

    stop = threading.Event()
    outcome: list[Any] = []
    search = Search(cfg, storage, stop=stop.is_set)
    run = threading.Thread(target=lambda: outcome.append(search.run()), daemon=True)
    lock_path().parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(), "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            run.start()
            run.join(1.0)
            assert run.is_alive()  # waiting for the lock
            stop.set()
            run.join(10)
            assert not run.is_alive(), "the stopped search still waits for the measurement lock"
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            run.join(30)
    assert search.stopped
    return outcome[0]


def test_a_stop_while_the_build_waits_for_the_measurement_lock_ends_the_wait(tmp_path: Path) -> None:
    """Another job measures (or trains) on this host for as long as it takes: a search stopped meanwhile (its
    worker shut down) gives up waiting at once and leaves its table unbuilt, to be built when it resumes."""
    save_shipped(tiny_table(host=other_host()))
    result = stopped_while_another_measures(config(), f"sqlite:///{tmp_path / 's.db'}")
    assert result.trials == [] and "while building a latency table" in result.notes[0]
    assert not list(user_table_dir().glob("*.json*"))  # nothing measured


def test_a_stop_while_a_trial_waits_to_measure_a_missing_layer_requeues_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's latency needs a layer the table lacks, measured after the host's measurement lock, which another
    job holds: a stop ends that wait too, and the trial, logged in flight, runs first on resume."""
    from latency_tables.portable import measurement_lock

    FakeFirstUse(monkeypatch, [])
    real = Objectives.cheap

    def cheap(self: Objectives, arch: Any) -> Any:
        with measurement_lock():  # as LatencyPredictor measures a missing layer
            return real(self, arch)

    monkeypatch.setattr(Objectives, "cheap", cheap)
    cfg, storage = config(), f"sqlite:///{tmp_path / 's.db'}"
    result = stopped_while_another_measures(cfg, storage)
    assert not any(t.state == "COMPLETE" for t in result.trials)
    assert any("stopped on request with 1 trial(s) in flight" in n for n in result.notes)
    again = Search(cfg, storage).run(resume=True)
    assert any("1 trial(s) in flight when the last controller stopped were requeued" in n for n in again.notes)
    assert [t.state for t in again.trials] == ["COMPLETE"] * 4


# ------------------------------------------------------------ shipped, a file, a host that cannot measure
def test_shipped_predicts_from_the_shipped_file_and_flags_every_latency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = save_shipped(tiny_table(host=other_host(), ms=0.3))
    tiny_table(ms=0.1).save(user_table_dir() / "decoy.json.gz")  # a table of this host: not what was asked for
    no_first_use(monkeypatch)
    with pytest.warns(UserWarning, match="another host"):
        result = Search(config(latency_table="shipped"), f"sqlite:///{tmp_path / 's.db'}").run()
    chosen = result.latency_tables[FP32]
    assert (chosen["source"], chosen["path"], chosen["verdict"]) == ("shipped", str(shipped), "foreign")
    assert chosen["foreign"] and not chosen["built_now"]
    command = f"hwnas lut build --profile {FP32} --space SPACE --first-use"
    assert chosen["build_command"] == command
    assert result.latency_warnings() == [chosen["warning"]]
    assert chosen["warning"].startswith(f"{LATENCY} predicted from latency table {chosen['table']}, measured on")
    assert chosen["warning"].endswith(f"build this host's table: {command}")
    done = [t for t in result.trials if t.state == "COMPLETE"]
    assert len(done) == 4 and all(t.latency_foreign for t in done)
    for t in done:
        arch = Architecture.decode(t.arch or "")
        expected = LatencyPredictor(tiny_table(ms=0.3), missing="error").predict_many([arch])[0]
        assert t.metrics[LATENCY] == pytest.approx(expected)
    save_result(result, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
    assert {r["latency_foreign"] for r in rows} == {"True"}
    assert all(r["latency_foreign"] for r in json.loads((tmp_path / "out" / "front.json").read_text()))
    stored = json.loads((tmp_path / "out" / "result.json").read_text())
    assert stored["latency_tables"][FP32]["foreign"] and stored["trials"][0]["latency_foreign"]
    # reading the stored study gives the same flags
    read = Search(config(name=result.study, latency_table="shipped"), f"sqlite:///{tmp_path / 's.db'}").read()
    assert read is not None and read.latency_tables == result.latency_tables
    assert [t.latency_foreign for t in read.trials] == [t.latency_foreign for t in result.trials]


def test_a_table_file_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tiny_table(ms=0.25).save(tmp_path / "mine.json.gz")
    tiny_table(ms=0.1).save(user_table_dir() / "decoy.json.gz")
    no_first_use(monkeypatch)
    result = Search(config(latency_table=str(mine)), f"sqlite:///{tmp_path / 's.db'}").run()
    chosen = result.latency_tables[FP32]
    assert (chosen["source"], chosen["path"], chosen["foreign"]) == ("file", str(mine), False)
    assert chosen["verdict"] == "unverified"  # this host's fingerprint, but no reference layers to time
    assert result.latency_warnings() == [] and not any(t.latency_foreign for t in result.trials)
    for t in result.trials:
        arch = Architecture.decode(t.arch or "")
        assert t.metrics[LATENCY] == pytest.approx(LatencyPredictor(tiny_table(ms=0.25)).predict_many([arch])[0])


def test_a_profile_this_host_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto takes the table there is (flagged when of another host); host refuses before any trial."""
    cuda = "ort-cuda-fp32-t1"
    if _can_run(cuda):
        pytest.skip("this host runs CUDA")
    tiny_table(cuda, host=other_host()).save(user_table_dir() / "cuda.json.gz")
    objectives = [{"metric": "params", "direction": "minimize"}, {"metric": f"latency:{cuda}", "direction": "minimize"}]
    with pytest.warns(UserWarning, match="another host"):
        result = Search(config(objectives=objectives), f"sqlite:///{tmp_path / 'a.db'}").run()
    chosen = result.latency_tables[cuda]
    assert chosen["source"] == "found" and chosen["foreign"] and not chosen["built_now"]
    assert (
        f"this host cannot run {cuda}" in chosen["warning"] and "build a table on a host that can" in chosen["warning"]
    )
    assert all(t.latency_foreign for t in result.trials)
    events: list[str] = []
    log_evaluations(monkeypatch, events)
    with pytest.raises(SearchError, match=f"latency_table: host: cannot measure {cuda} on this host"):
        Search(config(objectives=objectives, latency_table="host"), f"sqlite:///{tmp_path / 'b.db'}").run()
    assert events == []


def _can_run(profile: str) -> bool:
    from latency_tables.runtimes import get_runtime

    p = DeviceProfile.parse(profile)
    return not get_runtime(p.runtime).unavailable(p)


def test_a_table_folder_that_cannot_be_written_falls_back_to_the_table_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that cannot be saved does not fail every search: auto predicts from the table found, flagged and
    said why; host refuses, naming HWNAS_LUT_DIR."""
    save_shipped(tiny_table(host=other_host()))

    def cannot_save(*_: Any, **__: Any) -> HostTable:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(first_use, "ensure_host_table", cannot_save)
    with pytest.warns(UserWarning, match="another host"):
        result = Search(config(), f"sqlite:///{tmp_path / 'a.db'}").run()
    chosen = result.latency_tables[FP32]
    assert chosen["source"] == "found" and chosen["foreign"] and "HWNAS_LUT_DIR" in chosen["summary"]
    assert all(t.latency_foreign for t in result.trials if t.state == "COMPLETE")
    with pytest.raises(SearchError, match="latency_table: host: this host's latency table cannot be saved"):
        Search(config(latency_table="host"), f"sqlite:///{tmp_path / 'b.db'}").run()


def test_a_study_resumed_on_another_host_says_its_latencies_may_not_compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config cannot change latency_table on resume, but the host can (a job taken over by a worker on
    another machine), and a study may predate the record: the notes say the two sets of latencies may not
    compare."""
    save_shipped(tiny_table(host=other_host()))
    FakeFirstUse(monkeypatch, [])
    storage = f"sqlite:///{tmp_path / 's.db'}"
    Search(config(name="moved"), storage).run()
    monkeypatch.setattr(Search, "_host_fingerprint", staticmethod(lambda: "another-machine"))
    again = Search(config(name="moved", budget={"trials": 6}), storage).run(resume=True)
    [note] = [n for n in again.notes if "may not be comparable" in n]
    assert note.startswith(f"latency:{FP32} of the 4 trial(s) finished before this run came from table ")
    assert "on another host" in note


def test_the_proxies_check_times_its_nets_as_a_search_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hwnas proxies check`` draws its latency budgets from the table a search with ``auto`` would use: this
    host's, built on first use (not the shipped one of another host); where this host's cannot be saved, the
    table found, with the warning a search gives."""
    from nas.proxies.judging import budget_axis

    save_shipped(tiny_table(host=other_host(), ms=9.0))
    space = ss.load_space(TINY_SPEC)
    archs = [space.sample(s) for s in range(3)]
    events: list[str] = []
    FakeFirstUse(monkeypatch, events)
    values, axis = budget_axis(archs, [space] * 3, FP32)
    assert axis == LATENCY and events == ["build"]
    assert values == pytest.approx(LatencyPredictor(tiny_table(ms=0.1)).predict_many(archs))

    def cannot_save(*_: Any, **__: Any) -> HostTable:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(first_use, "ensure_host_table", cannot_save)
    (user_table_dir() / tiny_table().default_filename()).unlink()
    with pytest.warns(UserWarning, match="another host"):
        values, axis = budget_axis(archs, [space] * 3, FP32)
    assert values == pytest.approx(LatencyPredictor(tiny_table(ms=9.0)).predict_many(archs))
