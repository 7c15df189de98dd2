"""The benchmarks' child processes (eval/child.py): a real child's progress lines and result come
back, what it prints goes to its log, and a child that fails is a RuntimeError quoting its log."""

from __future__ import annotations

import pytest

CHILD = """
from eval.child import Channel
channel = Channel()
print("a library talking")
channel.progress(1, 2, "half")
channel.send_result({"answer": [42]})
"""


def test_a_child_sends_progress_and_its_result_and_prints_to_its_log(tmp_path):
    from eval.child import run_child

    seen = []
    log = tmp_path / "child.log"
    result, started = run_child(["-c", CHILD], log, lambda *a: seen.append(a), what="the test child")
    assert result == {"answer": [42]} and seen == [(1, 2, "half")] and started > 0
    assert log.read_text() == "a library talking\n"


def test_a_child_that_fails_or_sends_nothing_is_an_error_quoting_its_log(tmp_path):
    from eval.child import run_child

    with pytest.raises(RuntimeError, match=r"(?s)^the failing child failed \(exit 3\):\n.*gone wrong\n$"):
        run_child(["-c", "import sys; sys.stderr.write('gone wrong\\n'); sys.exit(3)"], tmp_path / "a.log", None,
                  what="the failing child")
    with pytest.raises(RuntimeError, match=r"^the silent child failed \(exit 0\)"):
        run_child(["-c", "pass"], tmp_path / "b.log", None, what="the silent child")


def test_the_childrens_environment_is_offline_without_the_dropped_settings(monkeypatch):
    from eval.child import child_env

    monkeypatch.setenv("AROLWG_AUTH", "someone:secret")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    env = child_env(drop=("AROLWG_AUTH",))
    assert "AROLWG_AUTH" not in env and env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert child_env()["AROLWG_AUTH"] == "someone:secret"
