"""End-to-end runs of the benchmark runner on a small subset: real model, real indexes, real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.runner import DEFAULT_QA, add_arguments, run, run_benchmark

CARDIFF = "ciw-cardiff-2020-12.txt"
REPORTS = Path(__file__).resolve().parent.parent / "index" / "reports"


def subset(tmp_path: Path, ids: list[str], extra: list[str] = ()) -> Path:
    """A Q&A file of the bundled questions with these ids (in this order), then the extra lines."""
    rows = {json.loads(line)["id"]: line for line in DEFAULT_QA.read_text(encoding="utf-8").splitlines() if line.strip()}
    path = tmp_path / "qa-subset.jsonl"
    path.write_text("\n".join([rows[i] for i in ids] + list(extra)) + "\n", encoding="utf-8")
    return path


def pick_ids() -> list[str]:
    """Five questions: two Wrexham facts, one Cardiff fact, one comparison, one unanswerable."""
    rows = [json.loads(line) for line in DEFAULT_QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    wx = [r["id"] for r in rows if r["kind"] == "fact" and r["evidence"][0]["source"] != CARDIFF][:2]
    cf = [r["id"] for r in rows if r["kind"] == "fact" and r["evidence"][0]["source"] == CARDIFF][:1]
    cmp_ = [r["id"] for r in rows if r["kind"] == "comparison"][:1]
    un = [r["id"] for r in rows if r["kind"] == "unanswerable"][:1]
    ids = wx + cf + cmp_ + un
    assert len(ids) == 5
    return ids


BAD_LINES = [
    '{"id": "bad-json", "question": "Is this finished?"',
    json.dumps(
        {"id": "bad-quote", "question": "Q?", "facts": ["x"], "kind": "fact",
         "evidence": [{"source": CARDIFF, "quote": "This sentence is not in the Cardiff report at all."}]}
    ),
]


def test_end_to_end_subset_writes_json_markdown_and_png(tmp_path, built_index, embeddings):
    ids = pick_ids()
    qa = subset(tmp_path, ids, BAD_LINES)
    calls: list[tuple[int, int, str]] = []
    out = tmp_path / "results"
    result = run_benchmark(
        qa_path=qa,
        configs=["tutorial", "bm25", "default"],
        index_dir=built_index,
        out_dir=out,
        progress=lambda done, total, msg: calls.append((done, total, msg)),
        embeddings=embeddings,
    )
    assert result.configs == ["tutorial", "bm25", "default"]
    assert sorted(result.metrics) == ["bm25", "default", "tutorial"]
    # Bad lines: skipped with their line numbers, the rest ran.
    assert [(s["line"], s["id"]) for s in result.skipped] == [(6, ""), (7, "bad-quote")]
    assert result.skipped[1]["message"] == (
        f"{qa}, line 7 (id bad-quote): evidence item 1: the quote 'This sentence is not in the Cardiff report at all.' "
        f"is not in {CARDIFF}; skipped."
    )
    assert result.meta["questions"] == 5 and result.meta["answerable"] == 4
    assert result.meta["peak_rss_mb"] > 100
    assert [q.id for q in result.questions if q.config == "default"] == ids

    # Progress: 1 (index) + 1 (tutorial build) + 5 x 3 configs + 5 (sweep), ending at total.
    assert calls[-1][0] == calls[-1][1] == 22
    dones = [c[0] for c in calls]
    assert dones == sorted(dones)

    for name in result.configs:
        m = result.metrics[name]
        assert m["questions"] == 5 and m["answerable"] == 4 and m["errors"] == 0
        for key in ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "fact_accuracy"):
            assert 0.0 <= m[key] <= 1.0, (name, key, m[key])
        assert m["recall@1"] <= m["recall@3"] <= m["recall@5"] <= m["recall@10"]
        assert m["latency_p50_s"] > 0 and m["latency_p95_s"] >= m["latency_p50_s"]
    assert result.metrics["tutorial"]["index_chunks"] == 63  # 1000/200 splitter over the two reports
    assert result.metrics["tutorial"]["citation_validity"] is None  # it cites nothing
    assert result.metrics["tutorial"]["abstained_rate_unanswerable"] == 0.0
    assert result.metrics["default"]["citation_validity"] == 1.0
    assert result.metrics["default"]["index_seconds"] is None  # an existing index: build not timed
    assert set(result.metrics["default"]) >= {"retrieve_p50_s", "answer_p95_s", "comparison_full_recall@5"}
    ratios = result.ratios()
    assert ratios["tutorial"]["recall@10"] in (1.0, None)
    # The sweep saw every question's score.
    assert [r["id"] for r in result.sweep["scores"]] == ids
    assert result.sweep["best"] in result.sweep["points"]

    # Files: a timestamped set and latest.* copies.
    assert result.json_path.parent == out and result.json_path.name.startswith("eval-")
    assert sorted(p.name for p in out.glob("latest*")) == ["latest-sweep.png", "latest.json", "latest.md", "latest.png"]
    data = json.loads((out / "latest.json").read_text())
    assert data["metrics"]["default"]["recall@5"] == result.metrics["default"]["recall@5"]
    assert [s["line"] for s in data["skipped"]] == [6, 7]
    assert len(data["questions"]) == 15
    first = data["questions"][0]
    assert first["config"] == "tutorial" and first["id"] == ids[0]
    assert first["hit_ranks"] == [i for i in range(1, 11) if i in first["hit_ranks"]]
    for png in (result.chart_path, result.sweep_chart_path):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    md = (out / "latest.md").read_text()
    assert md.startswith("# Arolwg benchmark")
    assert "| metric | tutorial | bm25 | default |" in md
    assert "![benchmark chart](latest.png)" in md and "![abstention sweep](latest-sweep.png)" in md
    assert "line 7 (id bad-quote)" in md and "## Abstention threshold" in md
    assert result.to_markdown() == result.markdown_path.read_text()


def test_own_reports_folder_builds_a_fresh_index_and_skips_unknown_reports(tmp_path, embeddings):
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(REPORTS / CARDIFF, reports / CARDIFF)
    ids = pick_ids()  # two of them are about Wrexham, which is not in this folder
    result = run_benchmark(
        qa_path=subset(tmp_path, ids), reports_dir=reports, configs=["default"], write=False, sweep=False, embeddings=embeddings
    )
    assert result.meta["reports"] == [CARDIFF]
    skipped_ids = [s["id"] for s in result.skipped]
    assert skipped_ids == ids[:2] + ([ids[3]] if ids[3] in skipped_ids else [])
    assert all("which is not in the index" in s["reason"] for s in result.skipped)
    m = result.metrics["default"]
    assert m["index_chunks"] > 10 and m["index_seconds"] > 0 and m["index_chunks_per_s"] == pytest.approx(
        m["index_chunks"] / m["index_seconds"]
    )
    assert result.json_path is None  # write=False


def test_cli_prints_the_table_and_writes_results(tmp_path, built_index, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli-results"
    args = parser.parse_args(
        ["--qa", str(subset(tmp_path, pick_ids(), BAD_LINES[:1])), "--index", str(built_index), "--configs", "bm25",
         "--out", str(out), "--no-sweep"]
    )
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "Arolwg benchmark: 5 questions (4 answerable)" in text
    assert "recall@5" in text and "bm25" in text
    assert "line 6" in text and "Skipped" in text
    assert (out / "latest.json").exists() and not (out / "latest-sweep.png").exists()


def test_cli_reports_an_unusable_set_in_one_sentence(tmp_path, built_index, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--qa", str(tmp_path / "none.jsonl"), "--index", str(built_index), "--configs", "bm25"])
    assert run(args) == 1
    err = capsys.readouterr().err
    assert err == f"The question set {tmp_path / 'none.jsonl'} does not exist: give the path of a .jsonl file.\n"


def test_configuration_choice_follows_the_llm_setting():
    from eval.runner import _resolve_configs
    from rag.settings import get_settings

    notes: list[str] = []
    assert _resolve_configs(None, get_settings(), notes) == ["tutorial", "dense", "bm25", "hybrid", "default"]
    assert _resolve_configs(None, get_settings(llm="openai"), notes)[-1] == "llm"
    assert _resolve_configs(["default", "llm", "default"], get_settings(), notes) == ["default"]
    assert notes == ["The llm configuration was skipped: no LLM is configured (set AROLWG_LLM)."]
    with pytest.raises(ValueError, match="unknown configuration 'fancy'"):
        _resolve_configs(["fancy"], get_settings(), notes)


def test_corpus_sets_build_the_dated_corpus_and_lines_are_checked_for_their_date():
    """Both corpus question sets are asked of the dated corpus; an answer line citing a council with several
    reports is scored on naming council and year, and the Markdown report shows the corpus scores by kind."""
    from eval.runner import CORPUS_HELDOUT_QA, CORPUS_QA, BenchmarkResult, QuestionResult, dated_reports, score_dated_lines, uses_dated_corpus
    from index.store import ReportInfo

    assert [uses_dated_corpus(p) for p in (CORPUS_QA, CORPUS_HELDOUT_QA, DEFAULT_QA)] == [True, True, False]
    reports = [
        ReportInfo("ciw-wrexham-2020-10.txt", "t", "Wrexham County Borough Council", "k", "12-23 October 2020", "s", 1),
        ReportInfo("synthetic-wrexham-2016-06.txt", "t", "Wrexham County Borough Council", "k", "12-23 June 2016", "s", 1),
        ReportInfo("ciw-cardiff-2020-12.txt", "t", "Cardiff Council", "k", "23 November - 3 December 2020", "s", 1),
    ]
    dated = dated_reports(reports)
    assert dated == {"ciw-wrexham-2020-10.txt": ("Wrexham", "2020"), "synthetic-wrexham-2016-06.txt": ("Wrexham", "2016")}

    res = QuestionResult("default", "q", "time-scope", True)
    res.answer = "Wrexham, Oct 2020: none [1]\nWrexham: four children [2]\nCardiff: fine [3]"
    res.citations = [{"n": 1, "source": "ciw-wrexham-2020-10.txt"}, {"n": 2, "source": "synthetic-wrexham-2016-06.txt"},
                     {"n": 3, "source": "ciw-cardiff-2020-12.txt"}]
    score_dated_lines(res, dated)
    assert res.dated_lines == (1, 2) and res.to_dict()["dated_lines"] == [1, 2]
    only_cardiff = QuestionResult("default", "q2", "which", True, answer="Cardiff: fine [1]",
                                  citations=[{"n": 1, "source": "ciw-cardiff-2020-12.txt"}])
    score_dated_lines(only_cardiff, dated)
    assert only_cardiff.dated_lines is None  # nothing in it needs a date

    # The tutorial cites nothing: its time and council scores stay unscored, not perfect; an answer
    # citing a report out of time, and one council of two, is scored so.
    from eval.dataset import QAItem
    from eval.runner import _score

    item = QAItem("w", 1, "Which councils ... in 2020?", "", (), (), "which", (),
                  in_time=("ciw-wrexham-2020-10.txt", "ciw-cardiff-2020-12.txt"), councils=("Wrexham", "Cardiff"))
    tutorial = QuestionResult("tutorial", "w", "which", False, answer="passages")
    _score(item, tutorial, {}, cites=False)
    assert (tutorial.out_of_time, tutorial.council_precision, tutorial.council_recall) == (None, None, None)
    ours = QuestionResult("default", "w", "which", False, answer="Wrexham, Jun 2016: x [1]", citations=[
        {"n": 1, "source": "synthetic-wrexham-2016-06.txt", "authority": "Wrexham County Borough Council",
         "start": 0, "end": 1, "quote": "x"}])
    _score(item, ours, {})
    assert (ours.out_of_time, ours.council_precision, ours.council_recall) == (True, 1.0, 0.5)

    per_kind = {"default": {
        "latest": {"n": 2, "recall@5": 1.0, "fact_accuracy": 0.5, "abstained_rate": 0.0, "in_time_rate": 1.0, "dated_line_rate": 0.75},
        "which": {"n": 1, "recall@5": 1.0, "fact_accuracy": None, "abstained_rate": 0.0, "council_precision": 1.0, "council_recall": 0.5},
    }}
    result = BenchmarkResult.from_dict({"configs": ["default"], "metrics": {"default": {"in_time_rate": 1.0, "dated_line_rate": 0.75, "dated_lines": 4}},
                                        "meta": {"per_kind": per_kind}})
    md = result.to_markdown()
    assert "| answer lines citing a council with several reports: labelled with council and year | 0.750 |" in md
    assert "| answer lines citing a council with several reports | 4 |" in md
    assert ("| config | kind | n | recall@5 | fact accuracy | abstained | no citation out of time | council precision | "
            "council recall | lines labelled with date |") in md
    assert "| default | latest | 2 | 1.000 | 0.500 | 0.000 | 1.000 | n/a | n/a | 0.750 |" in md
    assert "| default | which | 1 | 1.000 | n/a | 0.000 | n/a | 1.000 | 0.500 | n/a |" in md


def test_a_benchmark_error_is_printed_as_written_whatever_brackets_it_holds(capsys):
    from eval.runner import with_progress_bar

    def fail(progress):
        raise ValueError("The set [/tmp/qa.jsonl] has a line [bold] that is not JSON.")

    assert with_progress_bar("eval", fail) is None
    assert capsys.readouterr().err == "The set [/tmp/qa.jsonl] has a line [bold] that is not JSON.\n"


def test_cli_prints_skipped_lines_and_notes_as_written(tmp_path, built_index, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    odd = json.dumps({"id": "odd", "question": "Q?", "facts": ["x"], "kind": "fact",
                      "evidence": [{"source": "[/draft] notes.txt", "quote": "x"}]})
    qa = subset(tmp_path, pick_ids()[:1], [odd])
    args = parser.parse_args(["--qa", str(qa), "--index", str(built_index), "--configs", "bm25", "--out", str(tmp_path / "o"),
                              "--no-sweep"])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "names the report '[/draft] notes.txt', which is not in the index" in " ".join(out.split())
