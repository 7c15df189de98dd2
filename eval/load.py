"""The load benchmark: many chat sessions at once against the real web chat.

``arolwg eval --load 20`` (or ``make bench-load``) measures what issue 13 asked to keep holding:
20 people chatting at once, from the first second the chat is up, all get their own answers.

1. A new process builds a fresh index of the bundled reports (or copies ``--index``), plans the
   sessions from the Q&A set and answers each session's conversation with ``query()`` one question
   at a time: these are the expected answers.
2. ``arolwg chat --host 127.0.0.1 --port <free> --index <that index>`` starts as a subprocess.
3. As soon as it answers over HTTP, N sessions (one gradio_client ``Client`` each, so one Gradio
   session each) send their first question at the same moment (the first burst, while the chat
   is still loading its model), then the rest of their conversation, one question after another.
   Each session starts with a follow-up chain of the Q&A set (its earlier questions, then the
   follow-up), so a follow-up answered from another session's conversation would show.
4. Every request is timed (submit to the finished answer, queueing and the chat's sentence-by-
   sentence display included) and checked: it succeeded (an answer, not an error), the chat holds
   exactly this session's questions, a follow-up was understood as the expected question (no
   cross-talk), and the copied answer with its sources is the expected one, character for
   character.

Results go to ``load.json`` and ``load.md`` in ``--out`` (default eval/results): success rate,
latency p50/p95/max for the first burst and the rest, cross-talk, the machine's load average and
CPUs. Everything stays on 127.0.0.1; sessions, questions and time are bounded.

>>> from eval.load import run_load                                   # doctest: +SKIP
>>> result = run_load(sessions=3, questions=2, out_dir="/tmp/load")   # doctest: +SKIP
>>> result.summary["all"]["success_rate"]                             # doctest: +SKIP
1.0
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

EVAL_DIR = Path(__file__).resolve().parent
REPO_DIR = EVAL_DIR.parent
HOST = "127.0.0.1"  # the only address this benchmark ever talks to
DEFAULT_SESSIONS = 20
DEFAULT_QUESTIONS = 4
MAX_SESSIONS = 100
MAX_QUESTIONS = 10
DEFAULT_TIMEOUT_S = 900.0  # the whole run, sessions included; what is left then counts as failed
STARTUP_TIMEOUT_S = 300.0  # arolwg chat must answer over HTTP within this
JSON_NAME = "load.json"
MARKDOWN_NAME = "load.md"
# Settings that would point the chat elsewhere than the fresh index, or lock the benchmark out.
_DROPPED_SETTINGS = (
    "AROLWG_AUTH", "AROLWG_HOST", "AROLWG_PORT", "AROLWG_INDEX_DIR", "AROLWG_REPORTS_DIR",
    "AROLWG_CHROMA_HOST", "AROLWG_CHROMA_PORT",
)
_RESOLVED = re.compile(r'<div class="arolwg-resolved">Understood as: \u201c(.*?)\u201d</div>', re.S)
_ERROR = 'class="arolwg-answer arolwg-error"'

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Turn:
    """One question of a planned session."""

    qid: str  # the Q&A item's id; "<id>/h<n>" for the n-th earlier question of a follow-up
    question: str
    kind: str  # the item's kind, or "history" for a follow-up's earlier question
    facts: tuple[tuple[str, ...], ...] = ()
    followup: bool = False


@dataclass
class LoadResult:
    """A finished load run (see :func:`run_load`)."""

    summary: dict
    meta: dict
    requests: list[dict]
    warnings: list[str] = field(default_factory=list)
    json_path: Path | None = None
    markdown_path: Path | None = None

    def to_dict(self) -> dict:
        return {"meta": self.meta, "summary": self.summary, "warnings": self.warnings, "requests": self.requests}


# ---------------------------------------------------------------- planning


def plan_sessions(items: Sequence, sessions: int, questions: int) -> list[list[Turn]]:
    """The conversation of each session: a follow-up chain of the Q&A set first (its earlier
    questions, then the follow-up), then stand-alone questions spread over the set.

    ``items`` are :class:`eval.dataset.QAItem` (or anything with id, question, kind, facts and
    history). Chains are dealt round-robin, so neighbouring sessions ask different follow-ups;
    chains longer than ``questions`` are left out.
    """
    check_bounds(sessions, questions)
    chains = []
    singles = []
    for item in items:
        if item.history:
            chain = [Turn(f"{item.id}/h{j}", q, "history") for j, (q, _a) in enumerate(item.history, 1)]
            chain.append(Turn(item.id, item.question, item.kind, tuple(map(tuple, item.facts)), True))
            if len(chain) <= questions:
                chains.append(chain)
        else:
            singles.append(Turn(item.id, item.question, item.kind, tuple(map(tuple, item.facts))))
    plan = [list(chains[i % len(chains)]) if chains else [] for i in range(sessions)]
    wanted = sum(questions - len(p) for p in plan)
    if wanted and not singles:
        raise ValueError("the question set has too few questions without history to fill the sessions")
    picks = [singles[(i * len(singles)) // max(wanted, 1) % len(singles)] for i in range(wanted)] if wanted else []
    for p in plan:
        while len(p) < questions:
            p.append(picks.pop(0))
    return plan


def check_bounds(sessions: int, questions: int) -> None:
    """ValueError unless 1 <= sessions <= MAX_SESSIONS and 1 <= questions <= MAX_QUESTIONS."""
    if not 1 <= int(sessions) <= MAX_SESSIONS:
        raise ValueError(f"the load benchmark runs 1 to {MAX_SESSIONS} sessions, not {sessions}")
    if not 1 <= int(questions) <= MAX_QUESTIONS:
        raise ValueError(f"the load benchmark asks 1 to {MAX_QUESTIONS} questions per session, not {questions}")


# ---------------------------------------------------------------- the preparing process


def prepare(work: dict, progress: Progress | None = None) -> dict:
    """In a new process: the index, the sessions' plan and every expected answer.

    ``work`` has ``index`` (the folder to build or copy into), ``source_index`` (an index to copy,
    or None for a fresh one), ``reports``, ``qa``, ``sessions``, ``questions``.
    """
    from index import build_index, source_text
    from index.embeddings import get_embeddings
    from rag import query
    from rag.settings import get_settings
    from ui.render import answer_plain, question_html

    from eval.dataset import load_qa
    from eval.metrics import facts_present

    index_dir = Path(work["index"])
    settings = get_settings(index_dir=index_dir)
    embeddings = get_embeddings(settings)
    started = time.perf_counter()
    if work.get("source_index"):
        shutil.copytree(work["source_index"], index_dir)
        how = f"a copy of {work['source_index']}"
        failed: list = []
    else:
        report = build_index(work.get("reports") or None, index_dir, settings=settings, embeddings=embeddings, progress=progress)
        how = f"fresh, {len(report.added)} reports, {report.n_chunks} passages"
        failed = [f"{name}: {why}" for name, why in report.failed]
    index_seconds = time.perf_counter() - started

    def text_of(report_id: str) -> str | None:
        try:
            return source_text(report_id, index_dir, settings=settings)
        except Exception:  # noqa: BLE001 - a report the index lacks: load_qa skips its questions
            return None

    qa = load_qa(work["qa"], text_of)
    plan = plan_sessions(qa.questions, work["sessions"], work["questions"])
    k = settings.top_k
    cache: dict[tuple[str, ...], dict] = {}
    out = []
    total = sum(len(p) for p in plan)
    done = 0
    for turns in plan:
        history: list[tuple[str, str]] = []
        conversation: list[dict] = []
        for turn in turns:
            key = tuple(t["question"] for t in conversation) + (turn.question,)
            if key not in cache:
                ans = query(turn.question, history=list(history) or None, index_dir=index_dir, k=k, answerer="extractive",
                            settings=settings, embeddings=embeddings)
                resolved = (ans.resolved_question or "").strip()
                cache[key] = {
                    "copy": answer_plain(ans),
                    "text": ans.text,
                    "resolved": resolved if resolved and resolved != ans.question.strip() else "",
                    "abstained": bool(ans.abstained),
                    "facts_ok": facts_present(ans.text, turn.facts) if turn.facts else None,
                }
            ref = cache[key]
            conversation.append({
                "qid": turn.qid, "question": turn.question, "kind": turn.kind, "followup": turn.followup,
                "question_html": question_html(turn.question), "expected": ref,
            })
            history.append((turn.question, ref["text"]))
            done += 1
            if progress:
                progress(done, total, "expected answers")
        out.append(conversation)
    return {"sessions": out, "k": k, "index": how, "index_seconds": round(index_seconds, 2), "failed_files": failed,
            "qa_skipped": len(qa.skipped)}


# ---------------------------------------------------------------- processes


def child_env() -> dict[str, str]:
    """The environment of the processes this benchmark starts: offline, no telemetry, no password,
    and this checkout's code."""
    from eval.child import child_env as env

    return env(drop=_DROPPED_SETTINGS)


def _run_prepare(work: dict, log_path: Path, progress: Progress | None) -> dict:
    """Run :func:`prepare` in ``python -m eval.load --child``; its JSON result."""
    from eval.child import run_child

    result, _started = run_child(["-m", "eval.load", "--child", json.dumps(work)], log_path, progress,
                                 what="preparing the load benchmark", drop=_DROPPED_SETTINGS)
    return result


def _child_main(work: dict) -> int:
    from eval.child import Channel

    channel = Channel()
    channel.send_result(prepare(work, channel.progress))
    return 0


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_chat(index_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    """``arolwg chat`` on 127.0.0.1:port over ``index_dir``, its output to ``log_path``."""
    cmd = [sys.executable, "-m", "rag.cli", "chat", "--host", HOST, "--port", str(port), "--index", str(index_dir)]
    with log_path.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env(),
                                cwd=REPO_DIR if (REPO_DIR / "pyproject.toml").exists() else None)


def wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Return once ``url``/config answers 200; RuntimeError if the chat exits or takes too long."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"arolwg chat exited with status {proc.returncode} before answering:\n{tail}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"arolwg chat did not answer on {url} within {timeout:.0f} s; the end of its log:\n{tail}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this benchmark started: SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- the sessions


def _content(message) -> str:
    """A chat message's text (Gradio sends it as a string or as a list of content parts)."""
    content = message.get("content", "") if isinstance(message, dict) else ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _check(chat, copy, asked: list[dict], turn: dict) -> dict:
    """What one finished request shows: succeeded, own conversation, understood as expected, expected answer."""
    out = {"ok": False, "own_conversation": False, "resolved_as_expected": False, "expected_answer": False, "error": ""}
    if not isinstance(chat, list) or not chat:
        out["error"] = "no chat came back"
        return out
    last = _content(chat[-1])
    if _ERROR in last:
        out["error"] = html.unescape(re.sub(r"<[^>]+>", "", last))[:300]
        return out
    if not copy:
        out["error"] = "an empty answer"
        return out
    out["ok"] = True
    users = [_content(m) for m in chat if isinstance(m, dict) and m.get("role") == "user"]
    out["own_conversation"] = users == [t["question_html"] for t in asked]
    found = _RESOLVED.search(last)
    resolved = html.unescape(found.group(1)) if found else ""
    out["resolved"] = resolved
    out["resolved_as_expected"] = resolved == turn["expected"]["resolved"]
    out["expected_answer"] = copy == turn["expected"]["copy"]
    return out


def run_sessions(url: str, plan: list[list[dict]], *, k: int, deadline: float, progress: Progress | None = None) -> tuple[list[dict], dict]:
    """Run every planned session at once against the chat at ``url``; (request records, timings).

    Each session is one gradio_client ``Client`` (one Gradio session). All first questions are
    submitted together once every client is connected; a session stops at its first failure.
    """
    from gradio_client import Client

    total = sum(len(turns) for turns in plan)
    lock = threading.Lock()
    records: list[dict] = []
    done = [0]
    marks: dict = {}
    # The barrier's action runs before any party is released: every session times from the same mark.
    barrier = threading.Barrier(len(plan) + 1, action=lambda: marks.setdefault("burst", time.monotonic()))

    def record(rec: dict) -> None:
        with lock:
            records.append(rec)
            done[0] += 1
            if progress:
                progress(done[0], total, "requests")

    def session(s: int, turns: list[dict]) -> None:
        client = None
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False, token=False)
        except Exception as err:  # noqa: BLE001 - a session that cannot connect counts as failed requests
            connect_error = f"could not connect: {type(err).__name__}: {err}"[:300]
        try:
            barrier.wait(timeout=STARTUP_TIMEOUT_S)
        except threading.BrokenBarrierError:
            with lock:
                marks.setdefault("burst", time.monotonic())
        asked: list[dict] = []
        stopped = "" if client else connect_error
        for i, turn in enumerate(turns):
            rec = {"session": s, "turn": i + 1, "qid": turn["qid"], "kind": turn["kind"], "followup": turn["followup"],
                   "first_burst": i == 0, "question": turn["question"], "sent": False, "seconds": None}
            if stopped:
                rec.update(ok=False, error=stopped if i == 0 or not client else f"not sent: {stopped}")
                record(rec)
                continue
            asked.append(turn)
            rec["sent"] = True
            rec["started"] = round(time.monotonic() - marks["burst"], 3)
            t0 = time.perf_counter()
            try:
                job = client.submit(turn["question"], "", "", "extractive", k, api_name="/ask")
                chat, copy, _box = job.result(timeout=max(1.0, deadline - time.monotonic()))
                rec["seconds"] = round(time.perf_counter() - t0, 4)
                rec.update(_check(chat, copy, asked, turn))
            except Exception as err:  # noqa: BLE001 - any failure of a request is recorded, not raised
                rec["seconds"] = round(time.perf_counter() - t0, 4)
                rec.update(ok=False, error=f"{type(err).__name__}: {err}"[:300] or type(err).__name__)
            record(rec)
            if not rec.get("ok"):
                stopped = "an earlier question of this session failed"
        if client is not None:
            client.close()

    threads = [threading.Thread(target=session, args=(s, turns), name=f"load-session-{s}", daemon=True)
               for s, turns in enumerate(plan, 1)]
    connect_started = time.monotonic()
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=STARTUP_TIMEOUT_S)
    except threading.BrokenBarrierError:
        log.warning("not every session connected in time; the first burst went out without them")
    marks.setdefault("burst", time.monotonic())
    timings = {"connect_seconds": round(marks["burst"] - connect_started, 3),
               "load_at_burst": [round(x, 2) for x in os.getloadavg()]}
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic()) + 30)
    timings["run_seconds"] = round(time.monotonic() - marks["burst"], 3)
    with lock:
        recorded = {(r["session"], r["turn"]) for r in records}
        for s, turns in enumerate(plan, 1):  # sessions still hanging at the deadline
            for i, turn in enumerate(turns):
                if (s, i + 1) not in recorded:
                    records.append({"session": s, "turn": i + 1, "qid": turn["qid"], "kind": turn["kind"],
                                    "followup": turn["followup"], "first_burst": i == 0, "question": turn["question"],
                                    "sent": False, "seconds": None, "ok": False, "error": "the run's time ran out"})
    records.sort(key=lambda r: (r["session"], r["turn"]))
    return records, timings


# ---------------------------------------------------------------- summary and files


def _stats(records: list[dict]) -> dict:
    from eval.metrics import percentile

    secs = [r["seconds"] for r in records if r.get("ok") and r.get("seconds") is not None]
    n = len(records)
    ok = sum(1 for r in records if r.get("ok"))
    return {
        "requests": n,
        "succeeded": ok,
        "success_rate": round(ok / n, 4) if n else None,
        "p50_s": round(percentile(secs, 50), 3) if secs else None,
        "p95_s": round(percentile(secs, 95), 3) if secs else None,
        "max_s": round(max(secs), 3) if secs else None,
    }


def summarise(records: list[dict]) -> dict:
    """Success and latency for all requests, the first burst and the rest; cross-talk and answers."""
    ok = [r for r in records if r.get("ok")]
    followups = [r for r in ok if r["followup"]]
    sessions = sorted({r["session"] for r in records})
    return {
        "all": _stats(records),
        "first_burst": _stats([r for r in records if r["first_burst"]]),
        "rest": _stats([r for r in records if not r["first_burst"]]),
        "sessions": len(sessions),
        "sessions_all_ok": sum(1 for s in sessions if all(r.get("ok") for r in records if r["session"] == s)),
        "cross_talk": sum(1 for r in ok if not (r["own_conversation"] and r["resolved_as_expected"])),
        "foreign_conversation": sum(1 for r in ok if not r["own_conversation"]),
        "followups": len(followups),
        "followups_resolved_as_expected": sum(1 for r in followups if r["resolved_as_expected"]),
        "unexpected_answers": sum(1 for r in ok if not r["expected_answer"]),
        "errors": sorted({r["error"] for r in records if not r.get("ok") and r.get("error")}),
    }


def _fmt_s(x) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(result: LoadResult) -> str:
    """The load run as a Markdown report."""
    s, m = result.summary, result.meta
    lines = [
        "# Load benchmark: concurrent chat sessions",
        "",
        f"Run {m['date']} (commit {m.get('git_commit') or 'unknown'}): {s['sessions']} sessions at once against "
        f"`arolwg chat` on {HOST}, {m['questions_per_session']} questions each, started as soon as the chat answered "
        f"over HTTP ({m['server_startup_s']:.1f} s after it was launched; the sessions connected in "
        f"{m['connect_seconds']:.1f} s). Index: {m['index']}.",
        "",
        "| requests | count | succeeded | success rate | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("first_burst", "first burst (each session's first question, sent together)"),
                       ("rest", "the rest (follow-ups and later questions)"), ("all", "**all**")):
        st = s[key]
        lines.append(f"| {label} | {st['requests']} | {st['succeeded']} | {_pct(st['success_rate'])} | "
                     f"{_fmt_s(st['p50_s'])} | {_fmt_s(st['p95_s'])} | {_fmt_s(st['max_s'])} |")
    la = m["load_average"]
    lines += [
        "",
        f"- **Cross-talk found:** {s['cross_talk']} (answers showing another session's conversation: "
        f"{s['foreign_conversation']}; follow-ups understood as their own session's question: "
        f"{s['followups_resolved_as_expected']} of {s['followups']}).",
        f"- **Answers differing from `query()` asked alone** (the copied answer and its sources, character for "
        f"character): {s['unexpected_answers']}.",
        f"- **Sessions with every request answered:** {s['sessions_all_ok']} of {s['sessions']}.",
        f"- **Errors logged by the chat** (ERROR lines in its log): {m['server_errors_logged']}.",
        f"- **Machine:** {m['cpus_usable']} usable CPUs (nproc; {m['cpu_count']} in all, {m['cpu_model']}); load average "
        f"(1, 5, 15 min) before the chat started {la['before']}, at the first burst {la['at_burst']}, "
        f"at the end {la['end']}.",
        f"- **Latency** is the wall time from submitting a question to its finished answer, as a browser waits: it "
        f"includes waiting in the chat's queue (4 questions answered at a time) and the chat showing an answer "
        f"sentence by sentence (0.04 s apart). Only successful requests are timed.",
    ]
    if s["errors"]:
        lines += ["", "Failures:", ""] + [f"- {e}" for e in s["errors"]]
    if result.warnings:
        lines += ["", "Notes:", ""] + [f"- {w}" for w in result.warnings]
    lines += ["", "Per request: `load.json` (`requests`)."]
    return "\n".join(lines) + "\n"


def write_results(result: LoadResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result.json_path = out_dir / JSON_NAME
    result.markdown_path = out_dir / MARKDOWN_NAME
    result.json_path.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    result.markdown_path.write_text(markdown(result), encoding="utf-8")


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- the run


def _check_inputs(qa_path: Path, index_dir, reports_dir) -> None:
    """A sentence now for a question set, index or reports folder that is missing: in the preparing
    process it would be a traceback, after a minute of work."""
    from rag.errors import EvalSetError, IndexMissingError, ReportsDirError

    if not qa_path.is_file():
        raise EvalSetError(f"The question set {qa_path} does not exist: give the path of a .jsonl file.")
    if index_dir and not Path(index_dir).is_dir():
        raise IndexMissingError(index_dir)
    if reports_dir and not Path(reports_dir).is_dir():
        raise ReportsDirError(reports_dir, "no such folder")


def run_load(
    sessions: int = DEFAULT_SESSIONS,
    questions: int = DEFAULT_QUESTIONS,
    *,
    qa_path: str | Path | None = None,
    reports_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    keep: bool = False,
    progress: Progress | None = None,
) -> LoadResult:
    """Run the load benchmark (see the module's docstring) and write load.json and load.md.

    ``index_dir``: an existing index to copy (never modified); by default a fresh one of
    ``reports_dir`` (the bundled reports) is built. ``timeout`` bounds the sessions' run; with
    ``keep``, the working folder (index, chat log) is left in place and named in the warnings.
    """
    from eval.runner import DEFAULT_QA, _git_commit, default_out_dir
    from eval.scale import machine

    check_bounds(sessions, questions)
    if timeout is None or timeout <= 0:
        raise ValueError(f"the load benchmark's time limit must be positive, not {timeout}")
    _check_inputs(Path(qa_path or DEFAULT_QA), index_dir, reports_dir)
    out = Path(out_dir) if out_dir else default_out_dir()
    work_dir = Path(tempfile.mkdtemp(prefix="arolwg-load-"))
    warnings: list[str] = []
    load_before = _loadavg()
    proc = None
    try:
        if progress:
            progress(0, 1, "building the index and the expected answers")
        prepared = _run_prepare(
            {
                "index": str(work_dir / "index"),
                "source_index": str(index_dir) if index_dir else None,
                "reports": str(reports_dir) if reports_dir else None,
                "qa": str(qa_path or DEFAULT_QA),
                "sessions": int(sessions),
                "questions": int(questions),
            },
            work_dir / "prepare.log",
            progress,
        )
        warnings += [f"not indexed: {f}" for f in prepared["failed_files"]]
        plan = prepared["sessions"]
        port = free_port()
        url = f"http://{HOST}:{port}/"
        chat_log = work_dir / "chat.log"
        if progress:
            progress(0, 1, "starting arolwg chat")
        launched = time.monotonic()
        proc = start_chat(work_dir / "index", port, chat_log)
        wait_until_up(url, proc, chat_log)
        startup = time.monotonic() - launched
        deadline = time.monotonic() + timeout
        records, timings = run_sessions(url, plan, k=prepared["k"], deadline=deadline, progress=progress)
        load_end = _loadavg()
    except BaseException:
        if proc is not None:
            stop(proc)
            proc = None
        # A failed run's folder (an index copy, logs) is not left behind: its error quotes the log's end.
        if keep:
            log.warning("the failed load run's index and logs are kept in %s", work_dir)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    finally:
        if proc is not None:
            stop(proc)
    server_log = (work_dir / "chat.log").read_text(errors="replace") if (work_dir / "chat.log").exists() else ""
    server_errors = sum(1 for line in server_log.splitlines() if line.startswith("ERROR") or "Traceback" in line)
    if keep:
        warnings.append(f"the index and the chat's log are kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    import gradio_client

    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "sessions": int(sessions),
        "questions_per_session": int(questions),
        "qa": str(Path(qa_path or DEFAULT_QA).name),
        "index": prepared["index"],
        "index_seconds": prepared["index_seconds"],
        "k": prepared["k"],
        "host": HOST,
        "server_startup_s": round(startup, 2),
        "connect_seconds": timings["connect_seconds"],
        "run_seconds": timings["run_seconds"],
        "timeout_s": timeout,
        "server_errors_logged": server_errors,
        "load_average": {"before": load_before, "at_burst": timings["load_at_burst"], "end": load_end},
        **machine(),
        "gradio_client": getattr(gradio_client, "__version__", "?"),
        "latency": "wall time from submit to the finished answer (queueing and sentence-by-sentence display included)",
    }
    if server_errors:
        warnings.append(f"the chat logged {server_errors} error line(s)" + (f"; its log is in {work_dir}" if keep else ""))
    result = LoadResult(summary=summarise(records), meta=meta, requests=records, warnings=warnings)
    write_results(result, out)
    return result


# ---------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The load benchmark's options of ``arolwg eval``."""
    g = parser.add_argument_group(
        "load benchmark",
        "With --load N, arolwg eval starts the web chat (arolwg chat on 127.0.0.1) over a fresh index of the "
        "bundled reports (or a copy of --index) and runs N chat sessions at once against it with gradio_client, "
        "the first questions sent together as soon as the chat is up, each session asking a follow-up of its own. "
        "Every answer is checked against query() asked alone (no cross-talk). Writes load.json and load.md to --out "
        "(default eval/results): success rate, latency p50/p95/max (first burst and the rest), load average. "
        "--qa, --reports, --index and --out apply to it.",
    )
    g.add_argument("--load", type=int, default=None, metavar="N",
                   help=f"number of concurrent chat sessions, 1 to {MAX_SESSIONS} (make bench-load runs {DEFAULT_SESSIONS})")
    g.add_argument("--load-questions", type=int, default=DEFAULT_QUESTIONS, metavar="Q",
                   help=f"questions per session, 1 to {MAX_QUESTIONS} (default {DEFAULT_QUESTIONS})")
    g.add_argument("--load-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds the sessions may take in all; what is left then counts as failed (default {DEFAULT_TIMEOUT_S:.0f})")
    g.add_argument("--load-keep", action="store_true", help="keep the index and the chat's log (the folder is named)")


def run(args: argparse.Namespace) -> int:
    """Run the load benchmark from parsed ``arolwg eval`` arguments; print its figures."""
    from rich.console import Console
    from rich.markup import escape  # notes name files and quote errors

    from eval.runner import with_progress_bar

    result = with_progress_bar(
        "load",
        lambda progress: run_load(
            args.load,
            getattr(args, "load_questions", DEFAULT_QUESTIONS),  # not `or`: 0 is refused, not the default
            qa_path=getattr(args, "qa", None),
            reports_dir=getattr(args, "reports", None),
            index_dir=getattr(args, "index", None),
            out_dir=getattr(args, "out", None),
            timeout=getattr(args, "load_timeout", DEFAULT_TIMEOUT_S),
            keep=bool(getattr(args, "load_keep", False)),
            progress=progress,
        ),
        errors=(RuntimeError,),
    )
    if result is None:
        return 1
    console = Console()
    s, la = result.summary, result.meta["load_average"]
    for key, label in (("first_burst", "first burst"), ("rest", "the rest"), ("all", "all")):
        st = s[key]
        console.print(f"{label}: {st['succeeded']}/{st['requests']} succeeded ({_pct(st['success_rate'])}), "
                      f"p50 {_fmt_s(st['p50_s'])}, p95 {_fmt_s(st['p95_s'])}, max {_fmt_s(st['max_s'])}", highlight=False)
    console.print(f"{s['sessions']} sessions; cross-talk found: {s['cross_talk']}; answers differing from query(): "
                  f"{s['unexpected_answers']}; load average {la['before']} -> {la['end']} on "
                  f"{result.meta['cpus_usable']} CPUs. Results: {result.json_path}, {result.markdown_path}",
                  soft_wrap=True, highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]Note:[/yellow] {escape(w)}", soft_wrap=True, highlight=False)
    ok = s["all"]["success_rate"] == 1.0 and not s["cross_talk"]
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.load --load 20`` (the same as ``arolwg eval --load 20``)."""
    from eval.runner import add_input_arguments

    parser = argparse.ArgumentParser(prog="python -m eval.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    add_input_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(json.loads(args.child))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.load is None:  # --load 0 is refused by run_load, not taken for the default
        args.load = DEFAULT_SESSIONS
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
