"""The load benchmark (eval/load.py): its session plan, its bounds, and a small real run against
`arolwg chat` on 127.0.0.1 that writes load.json and load.md. No speed is asserted: the benchmark
measures speed, the tests only that it runs and checks what it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPORTS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def qa_items():
    from eval.dataset import load_qa

    def text(report_id):
        path = REPORTS / report_id
        return path.read_text(encoding="utf-8") if path.exists() else None

    return load_qa(REPO / "eval" / "qa.jsonl", text).questions


def test_each_session_asks_its_own_follow_up_after_its_earlier_questions(qa_items):
    from eval.load import plan_sessions

    plan = plan_sessions(qa_items, 20, 4)
    assert len(plan) == 20 and all(len(turns) == 4 for turns in plan)
    by_id = {item.id: item for item in qa_items}
    for turns in plan:
        follow = [i for i, t in enumerate(turns) if t.followup]
        assert len(follow) == 1  # one follow-up per session, after the questions it follows up
        item = by_id[turns[follow[0]].qid]
        assert [t.question for t in turns[: follow[0]]] == [q for q, _ in item.history]
        assert all(not t.followup and t.kind != "history" for t in turns[follow[0] + 1 :])
    # Neighbouring sessions follow up different conversations: a mix-up between them would show.
    assert all(plan[i][0].question != plan[i + 1][0].question for i in range(19))
    assert len({turns[0].question for turns in plan}) == 15  # every follow-up chain of qa.jsonl


def test_two_questions_a_session_still_hold_a_follow_up(qa_items):
    from eval.load import plan_sessions

    plan = plan_sessions(qa_items, 3, 2)
    assert [[t.followup for t in turns] for turns in plan] == [[False, True]] * 3


@pytest.mark.parametrize("sessions, questions", [(0, 2), (101, 2), (3, 0), (3, 11)])
def test_the_run_is_bounded(qa_items, sessions, questions):
    from eval.load import plan_sessions, run_load

    with pytest.raises(ValueError, match="load benchmark"):
        plan_sessions(qa_items, sessions, questions)
    with pytest.raises(ValueError, match="load benchmark"):
        run_load(sessions, questions, out_dir="/nonexistent")


def test_arolwg_eval_load_flags():
    from rag.cli import build_parser

    args = build_parser().parse_args(["eval", "--load", "20", "--load-questions", "3", "--load-timeout", "60"])
    assert (args.load, args.load_questions, args.load_timeout) == (20, 3, 60.0)
    assert build_parser().parse_args(["eval"]).load is None  # plain `arolwg eval` is the quality benchmark


@pytest.mark.slow
def test_a_small_load_run_answers_every_session_and_writes_its_files(tmp_path):
    from eval.load import run_load

    result = run_load(3, 2, out_dir=tmp_path)
    data = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))
    md = (tmp_path / "load.md").read_text(encoding="utf-8")
    s = data["summary"]
    assert s == result.summary
    assert s["sessions"] == 3 and s["all"]["requests"] == 6
    assert s["first_burst"]["requests"] == 3 and s["rest"]["requests"] == 3
    assert s["all"]["success_rate"] == 1.0, s["errors"]
    assert s["cross_talk"] == 0 and s["foreign_conversation"] == 0
    assert s["followups"] == 3 and s["followups_resolved_as_expected"] == 3
    assert s["unexpected_answers"] == 0
    assert all(r["sent"] and r["seconds"] is not None for r in data["requests"])
    meta = data["meta"]
    assert meta["host"] == "127.0.0.1" and meta["server_errors_logged"] == 0
    assert meta["cpus_usable"] >= 1 and set(meta["load_average"]) == {"before", "at_burst", "end"}
    for key in ("p50_s", "p95_s", "max_s"):
        assert s["all"][key] is not None
    assert "| first burst" in md and "Cross-talk found:** 0" in md and "load average" in md


def test_an_answer_from_another_sessions_conversation_is_counted_as_cross_talk():
    from eval.load import _check, summarise
    from ui.render import error_html, question_html

    mine = [{"question_html": question_html("How many case files did CIW review in Cardiff?")},
            {"question_html": question_html("How many of those were followed up with interviews?"),
             "expected": {"copy": "14 [1]", "resolved": "How many case files did CIW review in Cardiff: How many of those ...?"}}]
    other = question_html("How many days did inspectors spend on Wrexham children's services?")

    def answer(resolved):
        return {"role": "assistant", "content": [{"type": "text", "text":
                f'<div class="arolwg-resolved">Understood as: \u201c{resolved}\u201d</div>'}]}

    right = [{"role": "user", "content": mine[0]["question_html"]}, {"role": "assistant", "content": "50 [1]"},
             {"role": "user", "content": mine[1]["question_html"]}, answer(mine[1]["expected"]["resolved"])]
    assert _check(right, "14 [1]", mine, mine[1]) | {"resolved": ""} == {
        "ok": True, "own_conversation": True, "resolved_as_expected": True, "expected_answer": True, "error": "", "resolved": ""}
    # The follow-up resolved against another session's earlier question, in a chat holding it.
    crossed = [{"role": "user", "content": other}, right[1], right[2], answer("How many days ...: those followed up?")]
    seen = _check(crossed, "3 days [1]", mine, mine[1])
    assert seen["ok"] and not seen["own_conversation"] and not seen["resolved_as_expected"] and not seen["expected_answer"]
    failed = _check([right[2], {"role": "assistant", "content": error_html("Something went wrong")}], "", mine[1:], mine[1])
    assert not failed["ok"] and failed["error"] == "Something went wrong"

    base = {"first_burst": False, "followup": True, "seconds": 1.0}
    summary = summarise([{**base, "session": 1, "turn": 2, **seen}, {**base, "session": 2, "turn": 2, **failed, "seconds": None}])
    assert summary["cross_talk"] == 1 and summary["foreign_conversation"] == 1 and summary["unexpected_answers"] == 1
    assert summary["all"]["success_rate"] == 0.5 and summary["errors"] == ["Something went wrong"]


@pytest.mark.parametrize("argv, says", [
    (["--load", "0"], "the load benchmark runs 1 to 100 sessions, not 0"),
    (["--scale", ""], "--scale needs at least one report count, such as 2,100"),
])
def test_a_benchmark_asked_for_nothing_is_refused_not_taken_for_the_quality_benchmark(monkeypatch, capsys, argv, says):
    import eval.runner
    from rag.cli import main

    monkeypatch.setattr(eval.runner, "run", lambda args: pytest.fail("arolwg eval ran the quality benchmark"))
    assert main(["eval", *argv]) == 1
    assert capsys.readouterr().err == says + "\n"


@pytest.mark.parametrize("module, argv, says", [
    ("eval.load", ["--load", "0"], "the load benchmark runs 1 to 100 sessions, not 0"),
    ("eval.scale", ["--scale", ""], "--scale needs at least one report count, such as 2,100"),
])
def test_python_m_benchmark_asked_for_nothing_is_refused_not_run_at_its_default(monkeypatch, capsys, module, argv, says):
    import importlib

    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, "_run_prepare" if module == "eval.load" else "_measure_n",
                        lambda *a, **kw: pytest.fail(f"{module} ran at its default size"))
    assert mod.main(argv) == 1
    assert capsys.readouterr().err == says + "\n"


@pytest.mark.parametrize("argv, says", [
    (["--load", "2", "--load-questions", "0"], "the load benchmark asks 1 to 10 questions per session, not 0"),
    (["--load", "2", "--load-timeout", "0"], "the load benchmark's time limit must be positive, not 0.0"),
])
def test_a_zero_load_option_is_refused_not_taken_for_its_default(monkeypatch, capsys, argv, says):
    import eval.load
    from rag.cli import main

    monkeypatch.setattr(eval.load, "_run_prepare", lambda *a, **kw: pytest.fail("the load benchmark ran with its default"))
    assert main(["eval", *argv]) == 1
    assert capsys.readouterr().err == says + "\n"


def test_a_missing_question_set_index_or_reports_folder_is_one_sentence_before_any_work(monkeypatch, capsys, tmp_path):
    import eval.load
    from rag.cli import main

    monkeypatch.setattr(eval.load, "_run_prepare", lambda *a, **kw: pytest.fail("the load benchmark started its process"))
    none = tmp_path / "none"
    for flag, says in (
        ("--qa", f"The question set {none} does not exist: give the path of a .jsonl file."),
        ("--index", f"There is no Arolwg index at {none}: build one with `arolwg index --index {none}` "
                    "(or set AROLWG_INDEX_DIR to an existing index)."),
        ("--reports", f"Cannot read reports from {none}: no such folder."),
    ):
        assert main(["eval", "--load", "2", flag, str(none)]) == 1
        assert capsys.readouterr().err == says + "\n"


def test_a_failed_run_leaves_no_working_folder_unless_asked_to_keep_it(monkeypatch, tmp_path):
    import tempfile

    import eval.load

    def fail(*a, **kw):
        raise RuntimeError("preparing the load benchmark failed (exit 1):\nthe log")

    monkeypatch.setattr(eval.load, "_run_prepare", fail)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError, match="preparing the load benchmark failed"):
        eval.load.run_load(2, 1, out_dir=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="preparing the load benchmark failed"):
        eval.load.run_load(2, 1, out_dir=tmp_path / "out", keep=True)
    assert [p.name.startswith("arolwg-load-") for p in tmp_path.iterdir()] == [True]
