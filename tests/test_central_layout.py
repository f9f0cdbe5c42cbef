"""The shape of `central/`: SQL only in the store layer, small modules and functions, and the scheduler
that times the housekeeping (issue 12)."""

from __future__ import annotations

import ast
import queue
import re
import threading
import time
from pathlib import Path

import pytest
from support import wait_for

from central.announce import Announcer
from central.config import HealthSettings
from central.health import HealthMonitor
from central.live import LiveHub
from central.scheduler import Scheduler, Task
from central.service import WRITER_STALL_S
from central.store import Store
from central.writer import Writer

CENTRAL = Path(__file__).resolve().parent.parent / "central"
STORE_LAYER = {
    "db.py",
    "schema.py",
    "store.py",
    "queries.py",
    "integrity.py",
    "sessions.py",
    "forwardstate.py",
    "copystore.py",
    "snapshot_sql.py",
    "clip_sql.py",
    "sequences.py",
    "storeretain.py",
}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE\s+\w+\s+SET|DELETE FROM|CREATE TABLE)\b", re.S)


def _modules() -> list[Path]:
    return sorted(CENTRAL.rglob("*.py"))


def _strings(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_sql_lives_only_in_the_store_layer() -> None:
    offenders = [
        str(path.relative_to(CENTRAL))
        for path in _modules()
        if path.name not in STORE_LAYER or path.parent != CENTRAL
        if any(SQL.search(s) for s in _strings(ast.parse(path.read_text(encoding="utf-8"))))
    ]
    assert offenders == []
    assert any(SQL.search(s) for s in _strings(ast.parse((CENTRAL / "forwardstate.py").read_text())))


def test_modules_and_functions_stay_small() -> None:
    too_long: list[str] = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 350:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}:{node.name}: {length} lines")
    # config.py holds the pydantic models of the whole YAML file; splitting it belongs to its own change
    assert [t for t in too_long if not t.startswith("config.py:")] == []


def test_scheduler_runs_each_task_on_its_interval_and_survives_a_failing_one() -> None:
    runs: dict[str, int] = {"fast": 0, "slow": 0, "broken": 0, "late": 0}
    lock = threading.Lock()

    def count(name: str, fail: bool = False) -> Task:
        def run(now: float) -> None:
            with lock:
                runs[name] += 1
            if fail:
                raise RuntimeError("boom")

        return Task(
            name,
            {"fast": 0.02, "slow": 0.2, "broken": 0.02, "late": 0.02}[name],
            run,
            first_s=10.0 if name == "late" else 0.0,
        )

    scheduler = Scheduler(
        [count("fast"), count("slow"), count("broken", fail=True), count("late")], tick_s=0.01
    )
    scheduler.start()
    wait_for(lambda: runs["fast"] >= 20, 5)
    scheduler.stop()
    assert runs["broken"] >= 10 and scheduler.errors == runs["broken"]
    assert 1 <= runs["slow"] < runs["fast"] / 3
    assert runs["late"] == 0


@pytest.mark.parametrize(("stalled_s", "alive"), [(0.0, True), (29.0, True), (31.0, False), (600.0, False)])
def test_the_watchdog_is_fed_only_while_the_writer_makes_progress(
    tmp_path: Path, stalled_s: float, alive: bool
) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    health = HealthMonitor(HealthSettings(), "Asia/Ho_Chi_Minh")
    writer = Writer(store, queue.Queue(), lambda acks: None, Announcer(store, LiveHub(), None), health)
    writer.last_beat = time.monotonic() - stalled_s
    assert writer.alive(WRITER_STALL_S) is alive
    writer.beat()
    assert writer.alive(WRITER_STALL_S)
    store.close()


def test_dashboard_modules_import_each_other_without_cycles() -> None:
    static = CENTRAL / "web" / "static"
    imports = {
        js.name: set(re.findall(r'^import .* from "\./([\w.]+)";', js.read_text(encoding="utf-8"), re.M))
        for js in static.glob("*.js")
    }
    assert imports["feed.js"] and imports["search.js"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in imports.get(start, set()) - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    assert [name for name in sorted(imports) if reaches(name, name, set())] == []
