"""The two set-up commands (issue 14 item 6): `make test` brings Debian's Chromium for the browser
tests when it can, or says in one line what to run. apt-get and id are stand-ins here: nothing is
installed by these tests."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake(tmp_path):
    """A bin folder first on PATH with an `id` that says root (uid 0) or not, and a fake apt-get
    that logs its arguments and environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    apt = script(bin_dir / "fake-apt-get", f'echo "$DEBIAN_FRONTEND $*" >> {log}')

    def run(uid: int, chromium: str = "/nonexistent/chromium", apt_get: str | None = None, fail: bool = False):
        script(bin_dir / "id", f'[ "$1" = "-u" ] && echo {uid} || /usr/bin/id "$@"')
        if fail:
            script(apt, f'echo "$DEBIAN_FRONTEND $*" >> {log}; exit 100')
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        env.pop("MAKEFLAGS", None)
        proc = subprocess.run(
            ["make", "-s", "-C", str(REPO), "chromium", f"CHROMIUM={chromium}", f"APT_GET={apt_get or apt}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = log.read_text().splitlines() if log.exists() else []
        return proc, calls

    return run


def test_root_with_apt_get_installs_chromium_and_its_driver_non_interactively(fake):
    proc, calls = fake(uid=0)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Installing Debian's chromium and chromium-driver for the browser tests (apt-get) ..."]
    assert calls == ["noninteractive update -qq", "noninteractive install -y -qq chromium chromium-driver"]


def test_a_failed_install_says_what_to_run_and_lets_the_tests_run(fake):
    proc, calls = fake(uid=0, fail=True)
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1].startswith("Installing chromium failed: run 'apt-get install chromium chromium-driver' as root")
    assert calls == ["noninteractive update -qq"]


@pytest.mark.parametrize("uid, apt_get", [(1000, None), (0, "/nonexistent/apt-get")])
def test_otherwise_one_line_says_what_to_run(fake, uid, apt_get):
    proc, calls = fake(uid=uid, apt_get=apt_get)
    assert proc.returncode == 0 and calls == []
    assert proc.stdout.splitlines() == [
        "The browser tests need Chromium: run 'sudo apt-get install chromium chromium-driver' "
        "(or make test as root, which installs it)."
    ]


def test_nothing_happens_when_chromium_is_there(fake):
    proc, calls = fake(uid=0, chromium="/bin/sh")
    assert proc.returncode == 0 and proc.stdout == "" and calls == []


def test_make_test_brings_chromium_before_pytest_and_ci_relies_on_it():
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO), "test", "CHROMIUM=/nonexistent/chromium"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert "install -y -qq chromium chromium-driver" in dry and "-m pytest" in dry
    assert dry.index("chromium-driver") < dry.index("-m pytest")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "apt-get install" not in ci


def test_the_tests_and_make_look_for_the_same_chromium():
    from test_ui_live import CHROMIUM

    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"CHROMIUM ?= {CHROMIUM}" in makefile
