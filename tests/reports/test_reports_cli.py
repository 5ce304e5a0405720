"""``offrec report`` end to end (in-process), and writing safely."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from offrec.cli import app
from reports import generate_reports, render_run
from reports.errors import ReportError, ReportWriteError
from reports.model import ReportInput


@pytest.fixture
def config(runs_dir: Path) -> Path:
    path = runs_dir.parent / "offrec.toml"
    path.write_text('[paths]\nruns = "runs"\n')
    return path


@pytest.fixture
def fast_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validate the run as usual but skip drawing the figures (the CLI wiring is under test;
    the page itself is tested in test_reports_render.py)."""

    def quick(run_dir: Path, config: object = None) -> str:
        inp = ReportInput.load(run_dir)
        return f"<!DOCTYPE html><title>{inp.run_id}</title>"

    monkeypatch.setattr("reports.render.report_html", quick)


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_default_renders_the_newest_run_and_the_index(
    make_run: Callable[..., Path], fixture_module: ModuleType, config: Path, runs_dir: Path
) -> None:
    created = fixture_module.RunSpec().created_at
    make_run(run_id="older", created_at=created - timedelta(days=1))
    make_run(run_id="newer")
    code, out, err = _invoke("report", "-c", str(config))
    assert code == 0, err
    assert out.splitlines() == [
        str(runs_dir / "newer" / "report.html"),
        str(runs_dir / "index.html"),
    ]
    assert (runs_dir / "newer" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not (runs_dir / "older" / "report.html").exists()
    assert 'href="newer/report.html"' in (runs_dir / "index.html").read_text()


@pytest.mark.usefixtures("fast_render")
def test_run_and_all(make_run: Callable[..., Path], config: Path, runs_dir: Path) -> None:
    make_run(run_id="one")
    make_run(run_id="two")
    code, out, _ = _invoke("report", "-c", str(config), "--run", "one")
    assert code == 0 and out.splitlines()[0] == str(runs_dir / "one" / "report.html")
    code, out, _ = _invoke("report", "-c", str(config), "--all")
    assert code == 0 and len(out.splitlines()) == 3
    assert (runs_dir / "two" / "report.html").exists()


BAD_ARGS = [
    (["--run", "one", "--all"], "--run and --all: give one of them, not both"),
    (["--run", "nope"], "--run 'nope': no such run in .*; runs, newest first: one"),
    (["--run", "../one"], "--run '../one': must be a run id"),
]


@pytest.mark.parametrize("args, message", BAD_ARGS)
@pytest.mark.usefixtures("fast_render")
def test_bad_arguments_exit_2(
    make_run: Callable[..., Path], config: Path, args: list[str], message: str
) -> None:
    make_run(run_id="one")
    code, _, err = _invoke("report", "-c", str(config), *args)
    assert code == 2
    assert err.startswith("offrec: error: ")
    assert re.search(message, err), err


def test_no_runs_yet(config: Path, runs_dir: Path) -> None:
    code, _, err = _invoke("report", "-c", str(config))
    assert code == 2 and "no runs yet; run `offrec nightly`" in err
    runs_dir.rmdir()
    code, _, err = _invoke("report", "-c", str(config))
    assert code == 2 and "runs directory not found" in err


@pytest.mark.usefixtures("fast_render")
def test_broken_run_names_the_file(make_run: Callable[..., Path], config: Path) -> None:
    run = make_run(run_id="one")
    (run / "data_summary.json").unlink()
    code, _, err = _invoke("report", "-c", str(config), "--run", "one")
    assert code == 2
    assert "one/data_summary.json: not found; it is written by the build stage" in err


@pytest.mark.usefixtures("fast_render")
def test_all_renders_the_good_runs_and_lists_the_broken(
    make_run: Callable[..., Path], config: Path, runs_dir: Path
) -> None:
    make_run(run_id="good")
    bad = make_run(run_id="bad")
    (bad / "evaluation" / "summary.json").write_text("[]")
    code, out, err = _invoke("report", "-c", str(config), "--all")
    assert code == 2
    assert (runs_dir / "good" / "report.html").exists() and (runs_dir / "index.html").exists()
    assert "run bad: " in err and "summary.json: must be a JSON object" in err
    assert "1 of 2 runs could not be rendered" in err
    assert str(runs_dir / "good" / "report.html") in out


@pytest.mark.usefixtures("fast_render")
def test_write_failure_exits_1_naming_the_path_and_keeps_the_old_report(
    make_run: Callable[..., Path], config: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(run_id="one")
    render_run(run)
    before = (run / "report.html").read_bytes()

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)

    monkeypatch.setattr("reports.render.os.replace", full_disk)
    code, _, err = _invoke("report", "-c", str(config), "--run", "one")
    assert code == 1
    assert f"{run / 'report.html'}: cannot write the report (No space left on device)" in err
    assert (run / "report.html").read_bytes() == before
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


@pytest.mark.usefixtures("fast_render")
def test_unwritable_target(make_run: Callable[..., Path], runs_dir: Path) -> None:
    """A path that cannot be replaced (here: a directory in the way) is a ReportWriteError."""
    run = make_run(run_id="one")
    (run / "report.html").mkdir()
    (run / "report.html" / "keep").write_text("x")
    with pytest.raises(ReportWriteError, match=r"one/report.html: cannot write the report") as e:
        render_run(run)
    assert e.value.exit_code == 1
    assert (run / "report.html" / "keep").read_text() == "x"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_missing_runs_directory_in_python_api(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="runs directory not found"):
        generate_reports(tmp_path / "absent")


@pytest.mark.usefixtures("fast_render")
def test_really_read_only_run_directory(
    make_run: Callable[..., Path], config: Path, runs_dir: Path
) -> None:
    """A directory even root cannot write to (``chattr +i``): exit 1, path named, old report
    intact. Needs a file system with immutable attributes (ext4 here)."""
    run = make_run(run_id="one")
    render_run(run)
    before = (run / "report.html").read_bytes()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(run)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        code, _, err = _invoke("report", "-c", str(config), "--run", "one")
    finally:
        subprocess.run([chattr, "-i", str(run)], check=True)
    assert code == 1
    assert f"{run / 'report.html'}: cannot write the report (Operation not permitted)" in err
    assert (run / "report.html").read_bytes() == before
