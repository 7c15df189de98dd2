"""What the web chat does, as plain functions of explicit state: testable without a server.

The Gradio wiring in :mod:`ui.app` only moves values between components and these functions.
Each browser session owns a :class:`ChatState` (kept in a ``gr.State``), and every handler returns
a new one rather than changing the one it was given, so no session ever sees another's.

>>> state = ChatState()
>>> new_conversation()[0] == state
True
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from index.errors import is_disk_full
from rag.errors import ArolwgError, DiskFullError
from ui import render

log = logging.getLogger(__name__)

# Shown instead of a traceback when something unexpected fails (the traceback goes to the log).
UNEXPECTED = "Something went wrong on the server while doing that; the details are in the server log."

# Questions offered to click; each is answered by the bundled reports.
EXAMPLES = (
    "What does the Wrexham report say must improve about supervision in children's services?",
    "How well are partnerships working in Cardiff according to CIW?",
    "How do the two councils compare on carers' assessments?",
    "How many case files were reviewed in the Cardiff inspection?",
    "What are the strengths of Wrexham adult services?",
)

ANSWERERS = ("extractive", "llm")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ChatState:
    """One browser session's conversation.

    ``messages`` is what the chat shows (role/content dicts); ``history`` the (question, answer)
    pairs follow-up questions are resolved against; ``copies`` each answer as plain text.
    """

    messages: tuple[dict, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    copies: tuple[str, ...] = ()

    @property
    def turn(self) -> int:
        """How many answers this conversation has had (numbers the source anchors)."""
        return len(self.copies)


@dataclass(frozen=True)
class AskOptions:
    """Per-question settings picked in the side panel."""

    council: str = ""  # authority name, "" for all
    report: str = ""  # report id (file name), "" for all
    answerer: str = "extractive"
    k: int | None = None
    when: str = ""  # inspection date: "" any, "latest" (each council's newest report), or a year "2016"

    def filters(self) -> dict | None:
        """The ``filters`` argument of ``query()``: a report narrows more than a council or a date."""
        if self.report:
            return {"source": self.report}
        out: dict = {"authority": self.council} if self.council else {}
        if self.when == "latest":
            out["latest"] = True
        elif self.when.isdigit() and len(self.when) == 4:
            out["year"] = int(self.when)
        return out or None


class ChatUpdate(NamedTuple):
    """One step of an answer being shown: what the chat shows, the new state, the copy text."""

    messages: list[dict]
    state: ChatState
    copy_text: str
    warning: str = ""


def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


class Engine:
    """The index and models behind the UI, loaded lazily and shared by every session.

    Holds no per-user data. ``query_fn`` replaces ``rag.query`` (tests); everything else is the
    real index in ``index_dir`` (default: the settings' index folder).

    >>> engine = Engine(index_dir="/tmp/arolwg-index")  # doctest: +SKIP
    >>> engine.ask("When did CIW inspect Cardiff?").text  # doctest: +SKIP
    """

    def __init__(
        self,
        settings=None,
        *,
        index_dir: str | Path | None = None,
        embeddings=None,
        query_fn: Callable[..., Any] | None = None,
    ) -> None:
        self._settings = settings
        self._index_dir = Path(index_dir) if index_dir else None
        self._embeddings = embeddings
        self._query_fn = query_fn
        self._texts: dict[str, str | None] = {}
        self._lock = threading.Lock()
        # Index writes are serialised: two uploads at once would race for the next generation.
        self.write_lock = threading.Lock()

    @property
    def settings(self):
        if self._settings is None:
            from rag.settings import get_settings

            self._settings = get_settings()
        if self._index_dir is not None and Path(self._settings.index_dir) != self._index_dir:
            # One index for everything this engine does, whatever AROLWG_INDEX_DIR says.
            self._settings = self._settings.model_copy(update={"index_dir": self._index_dir})
        return self._settings

    @property
    def index_dir(self) -> Path:
        return self._index_dir or Path(self.settings.index_dir)

    @property
    def embeddings(self):
        if self._embeddings is None:
            from index.embeddings import get_embeddings

            self._embeddings = get_embeddings(self.settings)
        return self._embeddings

    @property
    def llm_available(self) -> bool:
        return self.settings.llm != "none"

    def warm_up(self) -> None:
        """Load the embedding model and the index's search structures now, so the first question
        is not slowed by them."""
        try:
            self.embeddings.embed_query("warm up")
        except Exception as err:  # noqa: BLE001 - a failed warm-up shows again on the first question
            log.warning("could not load the embedding model in advance: %s", err)
            return
        from rag.api import get_store
        from rag.errors import ArolwgError

        try:
            get_store(self.index_dir, settings=self.settings, embeddings=self.embeddings).warm()
        except ArolwgError as err:  # no index yet, or a damaged one: the first question says so
            log.info("index not warmed up: %s", err)

    def ask(self, question: str, history=(), filters=None, k=None, answerer=None, on_token=None):
        """``rag.query`` with this engine's index, settings and model."""
        fn = self._query_fn
        if fn is None:
            from rag import query as fn
        return fn(
            question,
            history=list(history) or None,
            filters=filters,
            index_dir=self.index_dir,
            k=k,
            answerer=answerer,
            settings=self.settings,
            embeddings=self.embeddings,
            on_token=on_token,
        )

    def findings(self, **filters) -> list:
        """``rag.findings.findings`` of this engine's index (filters: council, year, service, theme, word)."""
        from rag.api import get_store
        from rag.findings import findings

        store = get_store(self.index_dir, settings=self.settings, embeddings=self.embeddings)
        return findings(store=store, **filters)

    def reports(self) -> list:
        """The indexed reports (empty when there is no index yet)."""
        from index import list_reports
        from rag.errors import IndexMissingError

        try:
            return list(list_reports(self.index_dir, settings=self.settings))
        except IndexMissingError:
            return []

    def source_text(self, report_id: str) -> str | None:
        """A report's source text, cached; None when the report is not (or no longer) indexed."""
        with self._lock:
            if report_id in self._texts:
                return self._texts[report_id]
        try:
            from index import source_text

            text = source_text(report_id, self.index_dir, settings=self.settings)
        except Exception as err:  # noqa: BLE001 - the excerpt falls back to the passage's own text
            log.warning("no source text for %s: %s", report_id, err)
            text = None
        with self._lock:
            self._texts[report_id] = text
        return text

    def original(self, report_id: str) -> Path | None:
        """The copy of a report's original file that the index keeps (None: not indexed, or no copy).

        The path comes from the index's live manifest, never from the caller."""
        from index.build import original_file

        try:
            return original_file(report_id, self.index_dir, settings=self.settings)
        except ArolwgError as err:
            log.warning("no original file for %s: %s", report_id, err)
            return None

    def has_original(self, report_id: str) -> bool:
        """Whether the index keeps the report's original file (so a link to it will open)."""
        path = self.original(report_id)
        return path is not None and path.is_file()

    def report_meta(self) -> dict:
        """Each indexed report's metadata by id (for the dates in copied sources)."""
        try:
            return {r.report_id: r for r in self.reports()}
        except ArolwgError as err:
            log.warning("the report list cannot be read: %s", err)
            return {}

    def add(self, paths: Sequence[str | Path], progress: Progress | None = None):
        """Index uploaded files; returns the ``IndexReport``."""
        from index import update_index

        with self.write_lock:
            try:
                return update_index(
                    self.index_dir,
                    add=[Path(p) for p in paths],
                    settings=self.settings,
                    embeddings=self.embeddings,
                    progress=progress,
                )
            finally:
                self._forget_texts()

    def remove(self, report_ids: Sequence[str], progress: Progress | None = None):
        """Drop reports from the index; returns the ``IndexReport``."""
        from index import update_index

        with self.write_lock:
            try:
                return update_index(
                    self.index_dir,
                    remove=list(report_ids),
                    settings=self.settings,
                    embeddings=self.embeddings,
                    progress=progress,
                )
            finally:
                self._forget_texts()

    def set_dates(self, report_id: str, start: str, end: str | None = None):
        """Date a report's inspection by hand (``index.set_report_dates``); returns its metadata."""
        from index import set_report_dates

        with self.write_lock:
            return set_report_dates(report_id, start, end, index_dir=self.index_dir, settings=self.settings)

    def clear_dates(self, report_id: str):
        """The report's dates are its text's again (``index.clear_report_dates``); returns its metadata."""
        from index import clear_report_dates

        with self.write_lock:
            return clear_report_dates(report_id, index_dir=self.index_dir, settings=self.settings)

    def _forget_texts(self) -> None:
        with self._lock:
            self._texts.clear()


# ---------------------------------------------------------------- chat


def new_conversation() -> tuple[ChatState, list[dict], str]:
    """A fresh conversation: empty state, empty chat, nothing to copy."""
    return ChatState(), [], ""


def ask(
    engine: Engine,
    question: str,
    state: ChatState,
    options: AskOptions = AskOptions(),
    *,
    pace: float = 0.04,
) -> Iterator[ChatUpdate]:
    """Answer ``question`` in the conversation ``state``, yielding the chat as it fills in.

    The first update shows the question and a "searching" line; LLM tokens stream in as the
    backend sends them (``on_token``); an extractive answer, which arrives whole, is shown
    sentence by sentence (``pace`` seconds apart) so both look alike. The last update has the
    finished answer with its sources panel, and the new state.
    """
    question = (question or "").strip()
    if not question:
        yield ChatUpdate(list(state.messages), state, state.copies[-1] if state.copies else "",
                         "Type a question about the inspection reports first.")
        return
    turn = state.turn + 1
    asked = (*state.messages, _msg("user", render.question_html(question)))
    copy_before = state.copies[-1] if state.copies else ""

    def show(content: str) -> list[dict]:
        return [*asked, _msg("assistant", content)]

    yield ChatUpdate(show(render.partial_html("", turn)), state, copy_before)

    tokens: queue.Queue = queue.Queue()
    done = object()
    outcome: dict[str, Any] = {}
    answerer = options.answerer if options.answerer in ANSWERERS else None

    def work() -> None:
        try:
            outcome["answer"] = engine.ask(
                question,
                history=state.history,
                filters=options.filters(),
                k=options.k,
                answerer=answerer,
                on_token=tokens.put,
            )
        except BaseException as err:  # noqa: BLE001 - handed to the generator, which reports it
            outcome["error"] = err
        finally:
            tokens.put(done)

    threading.Thread(target=work, name="arolwg-ask", daemon=True).start()

    streamed, last = "", 0.0
    while True:
        item = tokens.get()
        if item is done:
            break
        text = str(item)
        # An LLM sends small tokens; the extractive answerer sends its whole text at once, which
        # is then shown sentence by sentence so both kinds of answer arrive the same way.
        pieces = render.split_for_streaming(text) if len(text) > 80 else [text]
        for piece in pieces:
            streamed += piece
            now = time.monotonic()
            if len(pieces) > 1 or now - last >= 0.05:  # small tokens: at most ~20 redraws a second
                last = now
                yield ChatUpdate(show(render.partial_html(streamed, turn)), state, copy_before)
                if len(pieces) > 1 and pace:
                    time.sleep(pace)

    error = outcome.get("error")
    if error is not None:
        if isinstance(error, ArolwgError):
            message = str(error)
        else:
            log.error("answering %r failed", question, exc_info=error)
            message = UNEXPECTED
        # The failed question stays visible but is not history: a follow-up should not build on it.
        failed = ChatState(messages=tuple(show(render.error_html(message))), history=state.history, copies=state.copies)
        yield ChatUpdate(list(failed.messages), failed, copy_before, message)
        return

    answer = outcome["answer"]
    if not streamed:
        shown = ""
        for piece in render.split_for_streaming(answer.text):
            shown += piece
            yield ChatUpdate(show(render.partial_html(shown, turn)), state, copy_before)
            if pace:
                time.sleep(pace)

    final = render.answer_html(answer, turn, engine.source_text, engine.has_original)
    copy = render.answer_plain(answer, engine.report_meta())
    new_state = ChatState(
        messages=tuple(show(final)),
        history=(*state.history, (question, answer.text)),
        copies=(*state.copies, copy),
    )
    yield ChatUpdate(list(new_state.messages), new_state, copy)


# ---------------------------------------------------------------- filters


def council_choices(reports: Sequence) -> list[tuple[str, str]]:
    """(label, value) pairs for the council filter, "All councils" first."""
    councils = sorted({r.authority for r in reports if getattr(r, "authority", "")})
    return [("All councils", ""), *[(c, c) for c in councils]]


def report_label(r) -> str:
    """How a report is named in menus: council, kind and dates, e.g. "Cardiff Council: Risk based inspection (Nov 2020)"."""
    bits = [b for b in (getattr(r, "authority", ""), getattr(r, "kind", "")) if b]
    label = ": ".join(bits) or getattr(r, "title", "") or r.report_id
    if getattr(r, "dates", ""):
        label += f" ({r.dates})"
    return label


def report_choices(reports: Sequence, council: str = "") -> list[tuple[str, str]]:
    """(label, value) pairs for the report filter, limited to ``council`` when one is picked."""
    chosen = [r for r in reports if not council or r.authority == council]
    labels = [report_label(r) for r in chosen]
    # Two reports with the same label are told apart by their file names.
    out = [
        (f"{lab} \u2014 {r.report_id}" if labels.count(lab) > 1 else lab, r.report_id)
        for lab, r in zip(labels, chosen)
    ]
    return [("All reports", ""), *out]


def when_choices(reports: Sequence) -> list[tuple[str, str]]:
    """(label, value) pairs for the date filter: any, each council's latest, and every year indexed."""
    from index.meta import normalise_dates

    years = sorted({y for r in reports if (y := normalise_dates(getattr(r, "dates", "") or "")[2])}, reverse=True)
    return [("Any date", ""), ("Latest of each council", "latest"), *[(str(y), str(y)) for y in years]]


# ---------------------------------------------------------------- reports tab


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_index_report(report, verb: str = "Added", uploaded: Sequence[str] = (), before: Sequence[str] = ()) -> str:
    """One short Markdown paragraph saying what an index update did, in plain words.

    ``uploaded``: the file names the user gave; only those are named as already indexed
    (an update reuses every other report too, which is not news). ``before``: the report ids
    indexed before, so a new version of one is called an update.
    """
    lines = []
    added = list(getattr(report, "added", None) or ())
    new = [r for r in added if r not in set(before)]
    updated = [r for r in added if r in set(before)]
    if new:
        lines.append(f"{verb} {', '.join(f'**{r}**' for r in new)}.")
    if updated:
        lines.append(f"Updated {', '.join(f'**{r}**' for r in updated)}: the new version replaced the indexed one.")
    if getattr(report, "removed", None):
        lines.append(f"Removed {', '.join(f'**{r}**' for r in report.removed)}.")
    same = [r for r in getattr(report, "skipped", None) or () if r in set(uploaded)]
    if same:
        lines.append(f"Already indexed and unchanged: {', '.join(same)}.")
    for name, why in getattr(report, "failed", None) or ():
        lines.append(f"**{name}** was not added: {why}")
    if not lines:
        lines.append("Nothing changed.")
    return " ".join(lines)


def _text_sha256(path: Path, settings) -> str | None:
    """The sha256 the index records for a report file's text (None: the file cannot be read)."""
    from index.load import load_file

    try:
        loaded = load_file(path, max_bytes=int(settings.max_file_mb * 1e6))
    except ArolwgError:
        return None
    return hashlib.sha256(loaded.source_text.encode("utf-8")).hexdigest()


def keep_both(paths: Sequence[Path], reports: Sequence, settings, staging: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The upload, with every file whose name an indexed report (or an earlier file of the
    upload) already has, but whose text differs, copied into ``staging`` under a free name
    ("name (2).txt"): an upload never silently replaces a report. Returns the files to index and
    the (uploaded name, indexed name) pairs renamed. A file whose text is already indexed under
    one of those names keeps that name (it is reported unchanged); an exact repeat within the
    upload is dropped.
    """
    known: dict[str, str | None] = {r.report_id: getattr(r, "sha256", None) for r in reports}
    batch: dict[str, Path] = {}
    shas: dict[str, str | None] = {}

    def sha_of(name: str) -> str | None:
        if name in known:
            return known[name]
        if name not in shas:
            shas[name] = _text_sha256(batch[name], settings)
        return shas[name]

    out: list[Path] = []
    renamed: list[tuple[str, str]] = []
    for path in paths:
        name = path.name
        if name not in known and name not in batch:
            batch[name] = path
            out.append(path)
            continue
        mine = _text_sha256(path, settings)
        if mine is None:  # unreadable: indexing it reports why, and keeps the indexed report as it was
            out.append(path)
            continue
        stem, suffix, n, candidate = Path(name).stem, Path(name).suffix, 1, name
        while (candidate in known or candidate in batch) and sha_of(candidate) != mine:
            n += 1
            candidate = f"{stem} ({n}){suffix}"
        if candidate in batch:  # the same text twice in one upload
            continue
        if candidate != name:
            staged = staging / str(len(renamed)) / candidate
            staged.parent.mkdir(parents=True)
            shutil.copyfile(path, staged)
            renamed.append((name, candidate))
            path = staged
        batch[candidate] = path
        shas[candidate] = mine
        out.append(path)
    return out, renamed


def gradio_upload_dir() -> Path:
    """Where Gradio stores uploaded files (``gradio.utils.get_upload_folder``, without importing gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def discard_uploads(paths: Sequence[Path]) -> None:
    """Delete uploaded files from Gradio's temporary folder (the index keeps each report's text).

    Only files inside that folder are touched: a path given through the API that points
    anywhere else is the caller's own file and is left alone.
    """
    root = gradio_upload_dir()
    for path in paths:
        try:
            real = Path(path).resolve()
            if root not in real.parents or not real.is_file():
                continue
            real.unlink()
            if real.parent != root:
                real.parent.rmdir()  # Gradio's per-file folder, if now empty
        except OSError:
            pass


def upload_reports(engine: Engine, files: Sequence[str] | None, progress: Progress | None = None) -> str:
    """Index uploaded report files; returns a plain message (never raises for a bad file).

    A bad file is reported in a sentence and the others are added. A file named like an indexed
    report but with other text is added beside it as "name (2).ext" (see :func:`keep_both`).
    Afterwards the uploaded files are deleted from Gradio's temporary folder.
    """
    paths = [Path(f) for f in files or () if f]
    if not paths:
        return "Choose one or more report files (PDF, DOCX, TXT or HTML) first."
    staging = Path(tempfile.mkdtemp(prefix="arolwg-upload-"))
    try:
        reports = engine.reports()
        before = [r.report_id for r in reports]
        to_add, renamed = keep_both(paths, reports, engine.settings, staging)
        report = engine.add(to_add, progress=progress)
    except ArolwgError as err:
        return str(err)
    except OSError as err:
        if is_disk_full(err):
            log.error("indexing uploads: out of disk space", exc_info=err)
            return str(DiskFullError())
        log.error("indexing uploads failed", exc_info=err)
        return UNEXPECTED
    except Exception as err:  # noqa: BLE001 - any failure is one plain sentence; the index is unchanged
        log.error("indexing uploads failed", exc_info=err)
        return UNEXPECTED
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        discard_uploads(paths)
    message = describe_index_report(report, uploaded=[p.name for p in to_add], before=before)
    added, same = set(getattr(report, "added", None) or ()), set(getattr(report, "skipped", None) or ())
    for name, new in renamed:
        if new in added:
            message += (
                f" **{name}** has the same name as an indexed report but different text, so it was kept beside it "
                f"as **{new}**; to replace the indexed report instead, remove it first, then upload the file again."
            )
        elif new in same:
            message += f" **{name}** differs from the indexed report of that name; its text is already indexed as **{new}**."
    return message


def remove_report(engine: Engine, report_id: str | None, progress: Progress | None = None) -> str:
    """Remove one report from the index; returns a plain message."""
    if not report_id:
        return "Pick a report to remove first."
    try:
        report = engine.remove([report_id], progress=progress)
    except ArolwgError as err:
        return str(err)
    except OSError as err:
        if is_disk_full(err):
            log.error("removing %s: out of disk space", report_id, exc_info=err)
            return str(DiskFullError())
        log.error("removing %s failed", report_id, exc_info=err)
        return UNEXPECTED
    except Exception as err:  # noqa: BLE001
        log.error("removing %s failed", report_id, exc_info=err)
        return UNEXPECTED
    if not getattr(report, "removed", None):
        return f"**{report_id}** is not in the index, so nothing was removed."
    return describe_index_report(report, verb="Removed")


def date_choices(reports: Sequence) -> list[tuple[str, str]]:
    """(label, value) pairs for the report to date by hand: those whose dates were not found
    first (so labelled), then the others with the dates they have."""
    undated = [r for r in reports if not getattr(r, "dates", "")]
    dated = [r for r in reports if getattr(r, "dates", "")]
    return [(f"{report_label(r)} \u2014 {r.report_id} \u2014 date not found", r.report_id) for r in undated] + [
        (f"{report_label(r)} \u2014 {r.report_id}", r.report_id) for r in dated
    ]


def date_report(
    engine: Engine, report_id: str | None, start: str | None, end: str | None = None, *, clear: bool = False
) -> tuple[bool, str]:
    """Set a report's inspection dates by hand (``clear``: go back to the dates its text gives);
    returns (saved, a plain message) and never raises."""
    if not report_id:
        return False, "Pick a report to date first."
    if not clear and not (start or "").strip():
        return False, "Give the first day of the inspection (YYYY-MM-DD), and its last day if it is not the same."
    try:
        if clear:
            meta = engine.clear_dates(report_id)
            said = f"{meta.dates} (year {meta.year})" if meta.dates else "none: its text gives no inspection date"
            return True, f"**{report_id}** is not dated by hand: its dates are those its text gives, {said}."
        meta = engine.set_dates(report_id, start.strip(), (end or "").strip() or None)
    except ArolwgError as err:
        return False, str(err)
    except OSError as err:
        if is_disk_full(err):
            log.error("dating %s: out of disk space", report_id, exc_info=err)
            return False, str(DiskFullError())
        log.error("dating %s failed", report_id, exc_info=err)
        return False, UNEXPECTED
    except Exception as err:  # noqa: BLE001 - any failure is one plain sentence; the index is unchanged
        log.error("dating %s failed", report_id, exc_info=err)
        return False, UNEXPECTED
    return True, (
        f"Dated **{report_id}** by hand: {meta.dates} (year {meta.year}). The Inspection date filter and "
        "questions about a time now use these dates; its sources say they were dated by hand."
    )


# ---------------------------------------------------------------- evaluation tab


@dataclass
class EvalOutcome:
    """What the Evaluation tab shows after a run."""

    message: str
    table: str = ""
    chart: str | None = None
    files: list[str] = field(default_factory=list)


def run_evaluation(
    engine: Engine,
    qa_file: str | None = None,
    configs: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    out_dir: str | Path | None = None,
) -> EvalOutcome:
    """Run the benchmark on the bundled (or an uploaded) Q&A set against the live index.

    Results (Markdown, JSON, PNG) go to ``out_dir``, by default a fresh temporary folder, so a
    run from the web never overwrites the checkout's ``eval/results``.
    """
    try:
        from eval import runner
    except ImportError:
        return EvalOutcome("The benchmark runner is not installed with this copy of Arolwg.")
    if not configs:
        return EvalOutcome("Pick at least one configuration to run.")
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="arolwg-eval-web-"))
    try:
        result = runner.run_benchmark(
            qa_path=qa_file or None,
            configs=list(configs),
            index_dir=engine.index_dir,
            out_dir=out_dir,
            progress=progress,
            settings=engine.settings,
            embeddings=engine.embeddings,
        )
    except ArolwgError as err:
        return EvalOutcome(str(err))
    except ValueError as err:
        return EvalOutcome(f"The benchmark could not run: {err}.")
    except Exception as err:  # noqa: BLE001
        log.error("benchmark failed", exc_info=err)
        return EvalOutcome(UNEXPECTED)
    files = [str(p) for p in (getattr(result, "markdown_path", None), getattr(result, "json_path", None)) if p]
    chart = getattr(result, "chart_path", None)
    return EvalOutcome(
        message=eval_summary(result),
        table=eval_table(result),
        chart=str(chart) if chart else None,
        files=files,
    )


def eval_summary(result) -> str:
    """One paragraph: what ran, on how many questions, how long it took, and any warnings."""
    meta = getattr(result, "meta", {}) or {}
    n, answerable = int(meta.get("questions", 0) or 0), meta.get("answerable")
    msg = f"Ran **{', '.join(result.configs)}** on {_plural(n, 'question')}"
    if answerable is not None:
        msg += f" ({answerable} answerable)"
    if meta.get("seconds") is not None:
        msg += f" in {meta['seconds']} s"
    msg += "."
    for w in getattr(result, "warnings", None) or ():
        msg += f"\n\n{w}"
    if getattr(result, "skipped", None):
        n = len(result.skipped)
        msg += f"\n\n{_plural(n, 'line')} of the Q&A set could not be used and {'was' if n == 1 else 'were'} skipped."
    return msg


def eval_table(result) -> str:
    """The metrics table as Markdown: one row per metric, one column per configuration."""
    metrics: dict = getattr(result, "metrics", {}) or {}
    configs = list(getattr(result, "configs", None) or metrics)
    try:
        from eval.report import cell, rows

        ratios = result.ratios() if "tutorial" in metrics else None
        # Per-stage latencies stay in the downloadable report: the page shows end-to-end ones.
        spec = [
            (g, key, label)
            for g, key, label in rows(result)
            if any(key in metrics[c] for c in configs) and not label.startswith("stage ")
        ]
        fmt_cell = lambda c, key: cell(result, c, key, ratios)  # noqa: E731
    except ImportError:  # an older runner without its report module: plain numbers
        spec = [("", key, key) for key in sorted({k for m in metrics.values() for k in m})]
        fmt_cell = lambda c, key: "n/a" if metrics[c].get(key) is None else f"{metrics[c][key]:.3g}"  # noqa: E731
    out = ["| metric | " + " | ".join(configs) + " |", "|---|" + "---:|" * len(configs)]
    group = None
    for g, key, label in spec:
        if g and g != group:
            out.append(f"| **{g}** |" + " |" * len(configs))
            group = g
        out.append(f"| {label} | " + " | ".join(fmt_cell(c, key) for c in configs) + " |")
    return "\n".join(out)


NO_RUN_YET = (
    "No benchmark has been run yet. Press **Run the benchmark** to run one here, or run `make eval` "
    "(or `arolwg eval`) where Arolwg is installed: its results are shown here when this page opens."
)
_last_run: dict[tuple, tuple[EvalOutcome, Path]] = {}
_last_run_lock = threading.Lock()


def last_evaluation(results_dir: str | Path | None = None) -> EvalOutcome:
    """What the Evaluation tab shows when it opens: the last run saved where ``arolwg eval`` writes
    (``eval/results`` in a checkout, or ``results_dir``), or how to run one.

    Its chart and files are served from a copy in the temp folder (the only place, besides the
    working folder, that Gradio serves files from), made once per saved run.
    """
    try:
        from eval import runner
    except ImportError:
        return EvalOutcome("The benchmark runner is not installed with this copy of Arolwg.")
    latest = (Path(results_dir) if results_dir else runner.default_out_dir()) / "latest.json"
    try:
        stat = latest.stat()
    except OSError:
        return EvalOutcome(NO_RUN_YET)
    key = (str(latest.resolve()), stat.st_mtime_ns, stat.st_size)
    with _last_run_lock:
        if key in _last_run:
            return _last_run[key][0]
        try:
            result = runner.load_result(latest)
            table = eval_table(result)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("The last benchmark results (%s) could not be read: %s", latest, err)
            return EvalOutcome("The last benchmark results could not be read: press **Run the benchmark** to measure again.")
        copies = Path(tempfile.mkdtemp(prefix="arolwg-eval-last-"))

        def copy(path: Path | None) -> str | None:
            if not path:
                return None
            shutil.copyfile(path, copies / path.name)
            return str(copies / path.name)

        outcome = EvalOutcome(
            message=last_run_summary(result),
            table=table,
            chart=copy(result.chart_path),
            files=[f for f in (copy(result.markdown_path), copy(result.json_path)) if f],
        )
        for _old, old_copies in _last_run.values():
            shutil.rmtree(old_copies, ignore_errors=True)
        _last_run.clear()
        _last_run[key] = (outcome, copies)
        return outcome


def last_run_summary(result) -> str:
    """"**Last run**, 2026-11-24 09:25 UTC (commit 93825d9), on `qa.jsonl`: ran ..." for a saved run."""
    from datetime import datetime, timezone

    meta = getattr(result, "meta", {}) or {}
    head = "**Last run**"
    try:
        head += ", " + datetime.fromisoformat(str(meta["started"])).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (KeyError, ValueError):
        pass
    if meta.get("git_commit"):
        head += f" (commit {str(meta['git_commit'])[:7]})"
    if meta.get("qa_path"):
        head += f", on `{Path(str(meta['qa_path'])).name}`"
    summary = eval_summary(result)
    return f"{head}: {summary[:1].lower()}{summary[1:]}\n\nPress **Run the benchmark** to measure again."


# ---------------------------------------------------------------- findings tab

FINDINGS_HEADERS = ["#", "Council", "Date", "Service", "Theme", "Kind", "Finding"]
SERVICE_CHOICES = [("Any service", ""), ("Children's services", "children"), ("Adults' services", "adults")]


@dataclass(frozen=True)
class FindingsView:
    """What the Findings tab shows for one choice of filters: the findings (kept in the session's
    state, so a selected row is found again), the table's rows, a sentence, and the CSV file."""

    findings: tuple = ()
    table: list[list] = field(default_factory=list)
    message: str = ""
    csv_path: str | None = None


def year_choices(reports: Sequence) -> list[tuple[str, str]]:
    """(label, value) pairs for the Findings tab's year filter: any, then every year indexed."""
    return [("Any year", ""), *[c for c in when_choices(reports) if c[1].isdigit()]]


def findings_csv(rows: Sequence) -> str:
    """The findings as a CSV file for download. Its name is its content's hash, so two sessions
    asking for the same findings share one identical file and no session sees another's choice."""
    import io

    from rag.findings import to_csv

    buf = io.StringIO()
    to_csv(rows, buf)
    data = buf.getvalue().encode("utf-8")
    folder = Path(tempfile.gettempdir()) / "arolwg-findings"
    folder.mkdir(exist_ok=True)
    path = folder / f"findings-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


def show_findings(engine: Engine, council: str = "", year: str = "", service: str = "", theme: str = "", word: str = "") -> FindingsView:
    """The findings of the indexed reports that pass the Findings tab's filters."""
    from index.meta import normalise_dates, short_name
    from rag.errors import IndexMissingError

    try:
        rows = engine.findings(
            council=council or None, year=(year or "").strip() or None, service=service or None,
            theme=(theme or "").strip() or None, word=(word or "").strip() or None,
        )
    except IndexMissingError:
        return FindingsView(message="No reports are indexed yet: add some in the Reports tab.")
    except ArolwgError as err:
        return FindingsView(message=str(err))
    except Exception as err:  # noqa: BLE001
        log.error("listing findings failed", exc_info=err)
        return FindingsView(message=UNEXPECTED)
    table = [
        [i, short_name(f.council), normalise_dates(f.dates)[0] or "not found", f.service or "-", f.theme, f.kind, f.text]
        for i, f in enumerate(rows, 1)
    ]
    if not rows:
        return FindingsView(message="No findings match these filters.")
    n_reports = len({f.report_id for f in rows})
    message = (
        f"{_plural(len(rows), 'finding')} from {_plural(n_reports, 'report')}. Sort or filter by a column from the ⋮ menu beside its name; "
        "select a row to see the finding in its report."
    )
    return FindingsView(tuple(rows), table, message, findings_csv(rows))


def finding_card(engine: Engine, rows: Sequence, number: object) -> str:
    """The source card of finding ``number`` (the table's "#", 1-based) of this session's findings."""
    try:
        i = int(number)
    except (TypeError, ValueError):
        return ""
    if not 1 <= i <= len(rows):
        return ""
    return render.finding_html(rows[i - 1], engine.source_text, engine.has_original)
