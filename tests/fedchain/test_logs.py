"""Logs: readable text by default, one JSON object per line with ``--log-format json``."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fedchain.logs import JsonLineFormatter, Progress

FEDCHAIN = Path(sys.executable).parent / "fedchain"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")
SIMULATE = ["simulate", "--peers", "2", "--rounds", "1", "--verbose"]
"""A real command that logs from several components without any outside service."""


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FEDCHAIN_LOG_FORMAT"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [str(FEDCHAIN), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_json_format_makes_every_stderr_line_an_object(tmp_path: Path) -> None:
    done = run_cli(["--log-format", "json", *SIMULATE, "--out", str(tmp_path / "sim")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines, "simulate --verbose logged nothing"
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    loggers = {e["logger"] for e in entries}
    # One logger per component, not one for the whole peer.
    assert {"fedchain.peer.node", "fedchain.consortium"} <= loggers, loggers


def test_text_format_is_the_default_and_readable(tmp_path: Path) -> None:
    done = run_cli([*SIMULATE, "--out", str(tmp_path / "sim")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    log_lines = [line for line in done.stderr.splitlines() if TEXT_LINE.match(line)]
    assert log_lines, done.stderr[-3000:]
    assert any(" INFO fedchain.peer.node: " in line for line in log_lines), log_lines[:5]
    for line in done.stderr.splitlines():
        with pytest.raises(ValueError):
            json.loads(line)


def test_a_failing_command_reports_its_error_as_json(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    done = run_cli(["--log-format", "json", "peer", "run", "--config", str(missing)], tmp_path)
    assert done.returncode != 0
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert entries[-1]["level"] == "ERROR" and "missing.toml" in entries[-1]["message"]


def test_an_unknown_format_is_refused_naming_the_choices(tmp_path: Path) -> None:
    done = run_cli(["--log-format", "yaml", "simulate"], tmp_path)
    assert done.returncode != 0
    assert "text" in done.stderr and "json" in done.stderr


def test_extra_fields_and_exceptions_reach_the_json_line() -> None:
    record = logging.makeLogRecord(
        {"name": "fedchain.content", "levelno": 20, "levelname": "INFO", "msg": "got %d"}
    )
    record.args = (3,)
    record.cid = "bafy-example"
    entry = json.loads(JsonLineFormatter().format(record))
    assert entry["message"] == "got 3" and entry["cid"] == "bafy-example"
    assert entry["logger"] == "fedchain.content" and entry["level"] == "INFO"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert "RuntimeError: boom" in json.loads(JsonLineFormatter().format(record))["exception"]


def test_progress_logs_each_quarter_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("fedchain.test.progress")
    progress = Progress(log, "fetching x", 8 * 2**20, unit="bytes")
    with caplog.at_level(logging.INFO, logger="fedchain.test.progress"):
        for done in range(0, 8 * 2**20 + 1, 2**19):
            progress.update(done)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "fetching x: 25% (2.0 MiB of 8.0 MiB)",
        "fetching x: 50% (4.0 MiB of 8.0 MiB)",
        "fetching x: 75% (6.0 MiB of 8.0 MiB)",
        "fetching x: 100% (8.0 MiB of 8.0 MiB)",
    ]
    assert caplog.records[-1].done == caplog.records[-1].total == 8 * 2**20
