"""The ``arolwg`` command: index reports, ask questions, run the benchmark, start the web chat."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from index.errors import is_disk_full
from rag.errors import ArolwgError, DiskFullError, HistoryFileError

log = logging.getLogger("arolwg")

EPILOG = """Settings can also come from the environment: AROLWG_REPORTS_DIR, AROLWG_INDEX_DIR,
AROLWG_EMBEDDING_MODEL, AROLWG_CHROMA_HOST, AROLWG_LLM, AROLWG_LLM_MODEL, AROLWG_LLM_BASE_URL,
AROLWG_LLM_API_KEY, AROLWG_AUTH, ... (flags win). Everything works offline by default."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default: AROLWG_INDEX_DIR or ~/.cache/arolwg/index)")
    p.add_argument("--log-level", default=None, help="logging level: DEBUG, INFO, WARNING (default), ERROR")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value


def _period(text: str) -> str:
    from rag.timescope import period

    if period(text) is None:
        raise argparse.ArgumentTypeError(f"must be a year, month or day such as 2018, 2018-06 or 2018-06-01, not {text!r}")
    return text


def _year(text: str) -> int:
    if len(text) != 4 or not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a year such as 2016, not {text!r}")
    return int(_period(text))


def _llm_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM answers (optional; the default answerer needs none)")
    g.add_argument("--llm", choices=["none", "openai", "ollama", "gguf"], help="answer backend (AROLWG_LLM)")
    g.add_argument("--llm-model", metavar="NAME", help="model name, or GGUF file path for gguf (AROLWG_LLM_MODEL)")
    g.add_argument("--llm-base-url", metavar="URL", help="LLM server URL (AROLWG_LLM_BASE_URL)")
    g.add_argument("--llm-api-key", metavar="KEY", help="LLM API key (AROLWG_LLM_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arolwg",
        description="Ask questions about Care Inspectorate Wales inspection reports; "
        "every answer cites the reports' exact words.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="build or update the index from a folder of reports",
                       description="Index every report (PDF, DOCX, HTML, Markdown, text) in a folder. "
                       "Unchanged reports are reused, removed ones dropped; a failure leaves the previous index usable.")
    p.add_argument("--reports", metavar="DIR", help="folder of reports (default: the bundled CIW reports; AROLWG_REPORTS_DIR)")
    p.add_argument("--upgrade", action="store_true",
                   help="upgrade or repair the index in place: bring one written by an older Arolwg up to date and "
                   "rebuild whatever is damaged from the report texts it holds, keeping every report (uploads "
                   "too), instead of making it hold the reports folder")
    p.add_argument("--date", nargs="+", metavar=("REPORT START", "END"),
                   help="date a report's inspection by hand instead of indexing: its file name, the first day and "
                   "(if not the same) the last day, as YYYY-MM-DD, e.g. --date report.pdf 2019-03-04 2019-03-08; "
                   "for a report whose dates were not found in its text. Nothing is embedded again")
    p.add_argument("--clear-date", metavar="REPORT",
                   help="undo --date: the report's dates are again those read from its own text (none, if it "
                   "gives none). Nothing is embedded again")
    _common(p)

    p = sub.add_parser("check", help="say whether an index is sound (exit 0) or what is damaged (exit 1)",
                       description="Verify every file a query reads: the live generation, each report's passages, the "
                       "keyword index, the vocabulary, and that the vector store holds every passage. "
                       "`arolwg index --upgrade` repairs what it finds, keeping every report.")
    _common(p)

    p = sub.add_parser("ask", help="answer one question with cited excerpts",
                       description="Answer a question from the indexed reports. The default index is built on first use.")
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print the whole answer as JSON (text, citations, passages)")
    p.add_argument("--council", metavar="NAME", help="only search this council's reports, e.g. Cardiff")
    p.add_argument("--report", metavar="FILE", help="only search this report (its file name)")
    p.add_argument("--year", type=_year, metavar="YYYY", help="only search reports of inspections in this year, e.g. 2016")
    p.add_argument("--since", type=_period, metavar="DATE", help="only search inspections since this year or month (2018, 2018-06)")
    p.add_argument("--before", type=_period, metavar="DATE", help="only search inspections before this year or month (2019, 2019-04)")
    p.add_argument("--latest", action="store_true", help="only search the latest report of each council")
    p.add_argument("--k", type=_positive_int, metavar="N", help="passages to retrieve (default 5)")
    p.add_argument("--history", metavar="FILE", help="JSON file of earlier turns [[question, answer], ...] for a follow-up")
    p.add_argument("--stream", action="store_true", help="print the answer as it is generated (LLM answers)")
    _common(p)
    _llm_flags(p)

    p = sub.add_parser("findings", help="list the reports' findings (strengths, what needs to improve), filtered; --csv",
                       description="List every finding of the indexed reports with its council, date, service, theme, "
                       "kind and the report's own words: a report's Strengths and What needs to improve headings, "
                       "or a prose report's must and should sentences.")
    p.add_argument("--council", metavar="NAME", help="only this council's reports, e.g. Wrexham")
    p.add_argument("--year", type=_year, metavar="YYYY", help="only inspections in this year, e.g. 2020")
    p.add_argument("--service", choices=["children", "adults"], help="only children's or adults' services")
    p.add_argument("--theme", metavar="WORDS", help="only findings under this principle or heading, e.g. well-being")
    p.add_argument("--word", metavar="WORD", help="only findings whose sentence contains this word or phrase")
    p.add_argument("--csv", action="store_true", help="print CSV (every column) instead of a table")
    _common(p)

    p = sub.add_parser("eval", help="run the benchmark on a Q&A set and compare configurations (--scale: the scale benchmark)")
    try:
        from eval.runner import add_arguments as eval_args
        from eval.scale import add_arguments as scale_args

        eval_args(p)
        scale_args(p)
    except ImportError:  # the runner is optional in a trimmed install
        pass
    try:
        from eval.load import add_arguments as load_args

        load_args(p)
    except ImportError:
        pass
    _add_missing_common(p)

    p = sub.add_parser("chat", help="start the web chat on 127.0.0.1")
    try:
        from ui.app import add_arguments as ui_args

        ui_args(p)
    except ImportError:
        pass
    _add_missing_common(p)
    return parser


def _add_missing_common(p: argparse.ArgumentParser) -> None:
    have = {a for action in p._actions for a in action.option_strings}
    if "--index" not in have:
        p.add_argument("--index", metavar="DIR", help="index folder")
    if "--log-level" not in have:
        p.add_argument("--log-level", default=None, help="logging level")


def _settings(args: argparse.Namespace):
    from rag.settings import get_settings

    return get_settings(
        index_dir=getattr(args, "index", None),
        reports_dir=getattr(args, "reports", None),
        llm=getattr(args, "llm", None),
        llm_model=getattr(args, "llm_model", None),
        llm_base_url=getattr(args, "llm_base_url", None),
        llm_api_key=getattr(args, "llm_api_key", None),
    )


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(total=1, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True)

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_description(message[:60], refresh=False)  # one redraw per update, below
        bar.refresh()

    return bar, progress


def cmd_date(args: argparse.Namespace) -> int:
    """``arolwg index --date REPORT START [END]``: date a report by hand."""
    from index import set_report_dates

    if not 2 <= len(args.date) <= 3 or args.upgrade or args.reports:
        raise ArolwgError(
            "`arolwg index --date` takes a report's file name and its first and last day, and nothing else: "
            "e.g. arolwg index --date report.pdf 2019-03-04 2019-03-08."
        )
    settings = _settings(args)
    report_id, start, *rest = args.date
    meta = set_report_dates(report_id, start, rest[0] if rest else None, index_dir=settings.index_dir, settings=settings)
    sys.stdout.write(
        f"Dated {report_id} by hand: {meta.dates} (year {meta.year}); date filters and questions about a time now use these dates.\n"
    )
    return 0


def cmd_clear_date(args: argparse.Namespace) -> int:
    """``arolwg index --clear-date REPORT``: the report's dates are its text's again."""
    from index import clear_report_dates

    if args.date or args.upgrade or args.reports:
        raise ArolwgError("`arolwg index --clear-date` takes a report's file name and nothing else: e.g. arolwg index --clear-date report.pdf.")
    settings = _settings(args)
    meta = clear_report_dates(args.clear_date, index_dir=settings.index_dir, settings=settings)
    said = f"{meta.dates} (year {meta.year}), as its text gives them" if meta.dates else "none: its text gives no inspection date"
    sys.stdout.write(f"{args.clear_date} is not dated by hand: its dates are {said}.\n")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from index import build_index

    if getattr(args, "clear_date", None):
        return cmd_clear_date(args)
    if getattr(args, "date", None):
        return cmd_date(args)
    settings = _settings(args)
    bar, progress = _progress_bar()
    try:
        if getattr(args, "upgrade", False):
            from index import update_index

            report = update_index(settings.index_dir, settings=settings, progress=progress)
        else:
            report = build_index(settings.reports_dir, settings.index_dir, settings=settings, progress=progress)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(settings.index_dir) from exc
        raise
    finally:
        bar.close()
    for name, why in report.failed:
        sys.stderr.write(f"skipped {name}: {why}\n")
    sys.stdout.write(
        f"Indexed {len(report.added)} new or changed, reused {len(report.skipped)}, removed {len(report.removed)} "
        f"report(s): {report.n_chunks} passages in {settings.index_dir} ({report.seconds:.1f} s).\n"
    )
    return 0


def _print_answer(ans, reports=None) -> None:
    from rag.references import sources_text, where

    out = sys.stdout
    if ans.notice:
        out.write(f"Note: {ans.notice}\n")
    out.write(ans.text + "\n")
    if ans.citations:
        out.write(f"\n{sources_text(ans, reports)}\n")
    elif ans.abstained and ans.passages:
        out.write("\nClosest passages:\n")
        for p in ans.passages[:3]:
            out.write(f"- {where(p, reports)}: {p.text[:200]}…\n")
    if ans.unsupported:
        out.write("\nNot supported by the cited passages:\n" + "".join(f"- {s}\n" for s in ans.unsupported))


def read_history(path: str) -> list[tuple[str, str]]:
    """The turns of a ``--history`` file; HistoryFileError (one sentence with the expected shape) otherwise."""
    try:
        turns = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArolwgError(f"The history file {path} cannot be read ({exc.strerror or exc}): check its path.") from exc
    except UnicodeDecodeError as exc:
        raise HistoryFileError(path, "is not UTF-8 text") from exc
    except ValueError as exc:
        raise HistoryFileError(path, f"is not valid JSON (line {getattr(exc, 'lineno', '?')})") from exc
    if not isinstance(turns, list):
        raise HistoryFileError(path, f"holds a JSON {type(turns).__name__.replace('dict', 'object')}, not a list")
    for i, turn in enumerate(turns, 1):
        if not (isinstance(turn, list) and len(turn) == 2 and all(isinstance(x, str) for x in turn)):
            raise HistoryFileError(path, f"has turn {i} as {json.dumps(turn, ensure_ascii=False)[:60]}, not a [question, answer] pair of texts")
    return [(q, a) for q, a in turns]


def cmd_check(args: argparse.Namespace) -> int:
    from index.build import check_index

    settings = _settings(args)
    problems = check_index(settings.index_dir, settings)
    if not problems:
        sys.stdout.write(f"The index at {settings.index_dir} is sound.\n")
        return 0
    for p in problems:
        sys.stdout.write(f"{p}\n")
    sys.stdout.write(f"Repair it with `arolwg index --index {settings.index_dir} --upgrade` (every report is kept).\n")
    return 1


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.api import query

    settings = _settings(args)
    history = read_history(args.history) if args.history else None
    filters = {}
    if args.council:
        filters["authority"] = args.council
    if args.report:
        filters["source"] = args.report
    for key in ("year", "since", "before"):
        if getattr(args, key, None) is not None:
            filters[key] = getattr(args, key)
    if getattr(args, "latest", False):
        filters["latest"] = True
    streamed = []

    def on_token(t: str) -> None:
        streamed.append(t)
        sys.stdout.write(t)
        sys.stdout.flush()

    ans = query(
        args.question, history=history, filters=filters or None, k=args.k, settings=settings,
        index_dir=args.index,  # an explicit folder must exist; only the default one is built on demand
        # Only an LLM produces text piece by piece; an extractive answer is printed once, whole.
        on_token=on_token if args.stream and not args.json and settings.llm != "none" else None,
    )
    if args.json:
        json.dump(ans.to_dict(), sys.stdout, indent=1, ensure_ascii=False, default=list)
        sys.stdout.write("\n")
    else:
        if streamed and ans.backend != "extractive":
            # What streamed was the model's raw text; below is the answer after verification.
            sys.stdout.write("\n\nChecked answer (citations verified against the reports):\n")
        elif streamed:
            sys.stdout.write("\n\n")
        _print_answer(ans, _report_meta(args.index or settings.index_dir, settings))
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    from index.meta import short_name
    from rag.api import get_store
    from rag.findings import findings, to_csv
    from rag.scope import allowed_reports

    settings = _settings(args)
    store = get_store(args.index, settings=settings)
    if args.council and not allowed_reports(store.reports, {"authority": args.council}):
        known = sorted({short_name(m.authority) for m in store.reports.values()})
        raise ArolwgError(f"No indexed report is of a council named {args.council!r}: the index holds {', '.join(known) or 'no reports'}.")
    rows = findings(store=store, council=args.council, year=args.year, service=args.service, theme=args.theme, word=args.word)
    if args.csv:
        try:
            to_csv(rows, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `arolwg findings --csv | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if not rows:
        sys.stdout.write("No findings match these filters.\n")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=True, caption=f"{len(rows)} finding(s); --csv gives every column, with each quote's span.")
    for name, kw in (("Council", {"max_width": 14}), ("Date", {"max_width": 14}), ("Service", {}), ("Theme", {"max_width": 16}),
                     ("Kind", {"max_width": 9}), ("Finding", {"ratio": 1, "min_width": 30})):
        table.add_column(name, overflow="fold", **kw)
    for f in rows:
        # Escaped: the report's words are quoted as written ("[see annex 2]" is not rich markup).
        cells = (short_name(f.council), f.dates or "not found", f.service or "-", f.theme, f.kind, f"“{f.text}”")
        table.add_row(*map(escape, cells))
    Console(file=sys.stdout, soft_wrap=False).print(table)
    return 0


def _report_meta(index_dir, settings) -> dict:
    """Each indexed report's metadata by id (its dates, for the sources); empty if it cannot be read."""
    from index import list_reports

    try:
        return {r.report_id: r for r in list_reports(index_dir, settings=settings)}
    except ArolwgError:
        return {}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 a user-facing error, 130 interrupted)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = (args.log_level or os.environ.get("AROLWG_LOG_LEVEL") or "WARNING").upper()
    logging.basicConfig(level=getattr(logging, level, logging.WARNING), format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.command == "index":
            return cmd_index(args)
        if args.command == "ask":
            return cmd_ask(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "findings":
            return cmd_findings(args)
        if args.command == "eval":
            # `is not None`: --load 0 and --scale "" are refused by their benchmark, not taken for plain `arolwg eval`.
            if getattr(args, "load", None) is not None:
                from eval.load import run as run_load

                return run_load(args)
            if getattr(args, "scale", None) is not None or getattr(args, "scale_requery", None):
                from eval.scale import run as run_scale

                return run_scale(args)
            from eval.runner import run

            return run(args)
        if args.command == "chat":
            from ui.app import run

            return run(args)
    except ArolwgError as exc:
        sys.stderr.write(f"arolwg: {exc}\n")
        return 2
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        log.debug("out of disk space", exc_info=True)
        sys.stderr.write(f"arolwg: {DiskFullError(getattr(args, 'index', None) or None)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("arolwg: interrupted.\n")
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
