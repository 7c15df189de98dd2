"""The Evaluation tab opens on the last saved benchmark run (issue 14 item 5), or says how to run one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ui import handlers as H

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "eval" / "results"
PNG = b"\x89PNG\r\n\x1a\n"


def saved_run(folder: Path) -> Path:
    """A copy of the checkout's last saved run (latest.json, .md, .png, -sweep.png)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("latest.json", "latest.md", "latest.png", "latest-sweep.png"):
        shutil.copyfile(RESULTS / name, folder / name)
    return folder


def test_the_tab_opens_on_the_last_saved_run(tmp_path):
    folder = saved_run(tmp_path / "results")
    data = json.loads((folder / "latest.json").read_text(encoding="utf-8"))
    out = H.last_evaluation(folder)

    started = data["meta"]["started"][:10]
    assert out.message.startswith(f"**Last run**, {started} ")
    assert f"on `qa.jsonl`: ran **{', '.join(data['configs'])}** on {data['meta']['questions']} questions" in out.message
    assert out.message.endswith("Press **Run the benchmark** to measure again.")
    assert out.table.splitlines()[0] == "| metric | " + " | ".join(data["configs"]) + " |"
    # Every row shown is the row the run's own Markdown report has: the numbers are the run's.
    report_lines = set((folder / "latest.md").read_text(encoding="utf-8").splitlines())
    rows = out.table.splitlines()[2:]
    assert len(rows) > 15 and all(row in report_lines for row in rows)
    assert any(row.startswith("| recall@5 | ") for row in rows)

    # The chart and files are served from a copy (Gradio serves only its temp and working folders).
    assert out.chart and Path(out.chart).read_bytes() == (folder / "latest.png").read_bytes()
    assert Path(out.chart).parent != folder and Path(out.chart).read_bytes()[:8] == PNG
    assert sorted(Path(f).name for f in out.files) == ["latest.json", "latest.md"]


def test_the_saved_run_is_read_once_and_again_when_it_changes(tmp_path):
    folder = saved_run(tmp_path / "results")
    first = H.last_evaluation(folder)
    assert H.last_evaluation(folder) is first
    data = json.loads((folder / "latest.json").read_text(encoding="utf-8"))
    data["configs"] = ["default"]
    data["meta"]["questions"] = 7
    (folder / "latest.json").write_text(json.dumps(data), encoding="utf-8")
    second = H.last_evaluation(folder)
    assert second is not first and "ran **default** on 7 questions" in second.message
    assert second.table.splitlines()[0] == "| metric | default |"
    assert not Path(first.chart).exists()  # the older copy is cleaned up


def test_with_no_run_yet_the_tab_says_how_to_run_one(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        out = H.last_evaluation(folder)
        assert out.message == H.NO_RUN_YET
        assert "`make eval`" in out.message and "Run the benchmark" in out.message
        assert (out.table, out.chart, out.files) == ("", None, [])


def test_a_damaged_results_file_gets_a_sentence(tmp_path, caplog):
    folder = tmp_path / "results"
    folder.mkdir()
    for text in ("{not json", "[1, 2]", '{"configs": ["x"], "metrics": {"x": 3}}'):
        (folder / "latest.json").write_text(text, encoding="utf-8")
        out = H.last_evaluation(folder)
        assert out.message == "The last benchmark results could not be read: press **Run the benchmark** to measure again."
        assert out.table == "" and out.chart is None
    assert "Traceback" not in out.message and str(folder) not in out.message


def test_a_run_without_its_chart_still_shows_the_table(tmp_path):
    folder = saved_run(tmp_path / "results")
    (folder / "latest.png").unlink()
    (folder / "latest.md").unlink()
    out = H.last_evaluation(folder)
    assert out.table and out.chart is None
    assert [Path(f).name for f in out.files] == ["latest.json"]


def test_by_default_the_tab_reads_where_arolwg_eval_writes():
    from eval.runner import default_out_dir, load_result

    assert default_out_dir() == RESULTS
    out = H.last_evaluation()
    assert out.message.startswith("**Last run**") and out.table and out.chart
    result = load_result(RESULTS / "latest.json")
    assert result.chart_path == RESULTS / "latest.png" and result.markdown_path == RESULTS / "latest.md"
    assert result.sweep_chart_path == RESULTS / "latest-sweep.png"
    assert result.metrics == json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))["metrics"]
