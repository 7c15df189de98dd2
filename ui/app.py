"""The Arolwg web chat: a Gradio Blocks app over the index, started by ``arolwg chat``.

Nothing heavy happens at import or build time: Gradio is imported inside the functions, and the
embedding model and index are opened on first use (once per process, shared by all sessions).
All behaviour lives in :mod:`ui.handlers`; this module only lays out components and wires events.

>>> from ui.app import build_app                      # doctest: +SKIP
>>> demo = build_app(index_dir="/tmp/arolwg-index")   # doctest: +SKIP
>>> demo.launch()                                     # doctest: +SKIP
(or, with the theme, styles and password settings applied: ``ui.app.launch()``)
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from ui import handlers as H
from ui import render

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("style.css")
TITLE = "Arolwg \u00b7 CIW inspection reports"
INTRO = (
    "Ask about Care Inspectorate Wales inspection reports. Every answer quotes the reports' own "
    "words, and says so when the reports are silent."
)
PLACEHOLDER = (
    "### Ask a question about the inspection reports\n"
    "Answers are built from the reports' own sentences. Click a number such as **[1]** "
    "to see the passage it comes from, highlighted."
)
UPLOAD_TYPES = [".pdf", ".docx", ".txt", ".html", ".htm", ".md"]

# The chat's own autoscroll would leave the end of a long sources panel in view. Instead, on every
# change the latest question is brought to the top of the chat, so an answer is read from its start.
SCROLL_JS = """
() => { requestAnimationFrame(() => {
  const qs = document.querySelectorAll('#arolwg-chat .arolwg-question');
  const q = qs[qs.length - 1];
  if (!q) { return; }
  let box = q.parentElement;
  while (box && box !== document.body) {
    const s = getComputedStyle(box);
    if (/(auto|scroll)/.test(s.overflowY) && box.scrollHeight > box.clientHeight) { break; }
    box = box.parentElement;
  }
  if (!box || box === document.body) { return; }
  const row = q.closest('.message-row') || q;
  box.scrollTop += row.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}); }
"""

# Copies the hidden plain-text answer; navigator.clipboard needs a secure context (https or
# localhost), so a shared http deployment falls back to the older execCommand route.
COPY_JS = """
async (text) => {
  const btn = document.querySelector('#arolwg-copy');
  if (!text) { return; }
  let ok = false;
  try { await navigator.clipboard.writeText(text); ok = true; } catch (e) {
    const ta = document.createElement('textarea');
    ta.value = text; ta.setAttribute('readonly', ''); ta.style.position = 'fixed'; ta.style.opacity = '0';
    document.body.appendChild(ta); ta.select();
    try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    ta.remove();
  }
  if (btn && ok) {
    btn.classList.add('arolwg-copied');
    const old = btn.textContent; btn.textContent = 'Copied';
    setTimeout(() => { btn.textContent = old; btn.classList.remove('arolwg-copied'); }, 1500);
  }
}
"""


def theme():
    """A calm, readable theme that loads no web fonts (the app must work offline)."""
    import gradio as gr

    return gr.themes.Soft(
        primary_hue="teal",
        secondary_hue="teal",
        neutral_hue="slate",
        font=["Inter", "ui-sans-serif", "system-ui", "Segoe UI", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    ).set(
        body_background_fill="*neutral_50",
        block_radius="10px",
    )


def css() -> str:
    """The app's stylesheet."""
    return CSS_PATH.read_text(encoding="utf-8")


def parse_auth(spec: str | None) -> list[tuple[str, str]] | None:
    """``"user:password"`` pairs, comma-separated, as Gradio's ``auth`` list (None: no password).

    >>> parse_auth("ann:s3cret, bob:pa:ss")
    [('ann', 's3cret'), ('bob', 'pa:ss')]
    >>> parse_auth("") is None
    True
    """
    from rag.errors import AuthSettingError

    if not spec or not spec.strip():
        return None
    pairs = []
    for item in spec.split(","):
        item = item.strip()
        user, sep, password = item.partition(":")
        if not sep or not user.strip() or not password:
            raise AuthSettingError()
        pairs.append((user.strip(), password))
    return pairs


def build_app(settings=None, *, index_dir=None, embeddings=None, engine: H.Engine | None = None):
    """The Gradio Blocks of the web chat (not launched; see :func:`launch`).

    ``engine`` replaces the default :class:`ui.handlers.Engine` over ``index_dir`` (tests).

    >>> demo = build_app(index_dir="/tmp/arolwg-index")  # doctest: +SKIP
    """
    import gradio as gr

    engine = engine or H.Engine(settings, index_dir=index_dir, embeddings=embeddings)
    settings = engine.settings
    answer_modes = [("Extractive: the reports' own sentences", "extractive")]
    if engine.llm_available:
        answer_modes.append((f"LLM: a written answer ({settings.llm}), checked against the reports", "llm"))

    eval_configs: list[str] = []
    try:
        from eval.runner import ALL_CONFIGS

        eval_configs = [c for c in ALL_CONFIGS if c != "llm" or engine.llm_available]
    except ImportError:  # the runner is optional for the chat
        pass

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        state = gr.State(H.ChatState())
        reports_state = gr.State([])  # report list of the last refresh, for the report filter

        gr.HTML(
            f'<div class="arolwg-brand"><h1>Arolwg</h1><span class="arolwg-tag">{render.esc(INTRO)}</span></div>',
            elem_id="arolwg-header",
        )
        with gr.Tabs():
            # ------------------------------------------------------------ chat
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4, min_width=480):
                        chatbot = gr.Chatbot(
                            value=[],
                            label="Conversation",
                            show_label=False,
                            elem_id="arolwg-chat",
                            height="calc(100vh - 310px)",
                            min_height=380,
                            placeholder=PLACEHOLDER,
                            examples=[{"text": q} for q in H.EXAMPLES],
                            buttons=[],  # the built-in copy would copy raw HTML: see "Copy answer"
                            latex_delimiters=[],
                            feedback_options=None,
                            layout="panel",
                            autoscroll=False,  # see SCROLL_JS
                        )
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(
                                label="Question",
                                show_label=False,
                                placeholder="Ask about the inspection reports, e.g. What must Wrexham improve about advocacy?",
                                lines=1,
                                max_lines=4,
                                scale=6,
                                autofocus=True,
                                elem_id="arolwg-question",
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="arolwg-ask")
                        with gr.Row(elem_id="arolwg-actions"):
                            new_btn = gr.Button("New conversation", size="sm", elem_id="arolwg-new")
                            copy_btn = gr.Button("Copy answer with sources", size="sm", elem_id="arolwg-copy")
                        copy_text = gr.Textbox(label="Answer with sources", visible=False, elem_id="arolwg-copy-text")
                    with gr.Column(scale=1, min_width=250, elem_id="arolwg-side"):
                        gr.HTML('<div class="arolwg-side-title">Search in</div>')
                        # Choices are filled per page load from the index; custom values are allowed so API
                        # callers can name a council or report added after this page was built.
                        council = gr.Dropdown(
                            label="Council", choices=[("All councils", "")], value="", allow_custom_value=True, elem_id="arolwg-council"
                        )
                        report = gr.Dropdown(
                            label="Report", choices=[("All reports", "")], value="", allow_custom_value=True, elem_id="arolwg-report"
                        )
                        when = gr.Dropdown(
                            label="Inspection date", choices=[("Any date", "")], value="", allow_custom_value=True, elem_id="arolwg-when"
                        )
                        gr.HTML('<div class="arolwg-side-title">Settings</div>')
                        answerer = gr.Radio(
                            label="Answer mode",
                            choices=answer_modes,
                            value="extractive",
                            info=None if engine.llm_available else "LLM answers are off: set AROLWG_LLM to use one.",
                            elem_id="arolwg-mode",
                        )
                        k = gr.Slider(
                            label="Passages to search",
                            minimum=1,
                            maximum=15,
                            step=1,
                            value=settings.top_k,
                            info="More passages can find more, but answers take longer.",
                            elem_id="arolwg-k",
                        )

            # ------------------------------------------------------------ reports
            with gr.Tab("Reports", id="reports"):
                gr.Markdown("### Indexed reports")
                reports_html = gr.HTML(elem_id="arolwg-reports")
                with gr.Row(equal_height=False):
                    with gr.Column():
                        gr.Markdown("### Add reports\nPDF, Word (DOCX), text or HTML files. They are searchable as soon as they are indexed.")
                        uploads = gr.File(
                            label="Report files",
                            file_count="multiple",
                            file_types=UPLOAD_TYPES,
                            elem_id="arolwg-upload",
                        )
                        add_btn = gr.Button("Add to the index", variant="primary", elem_id="arolwg-add")
                    with gr.Column():
                        gr.Markdown("### Remove a report\nIts passages are dropped from the index; the file itself is not touched.")
                        remove_pick = gr.Dropdown(
                            label="Report", choices=[], value=None, allow_custom_value=True, elem_id="arolwg-remove-pick"
                        )
                        remove_btn = gr.Button("Remove\u2026", variant="secondary", elem_id="arolwg-remove")
                        with gr.Row(visible=False) as confirm_row:
                            confirm_btn = gr.Button("Yes, remove it", variant="stop", elem_id="arolwg-remove-confirm")
                            cancel_btn = gr.Button("Cancel", elem_id="arolwg-remove-cancel")
                gr.Markdown(
                    "### Date a report\nFor a report whose inspection dates were not found in its text (or were read "
                    "wrongly): the first and last day of the inspection, as YYYY-MM-DD. Nothing is indexed again; "
                    "the table, the Inspection date filter and questions about a time use these dates, shown as dated by hand. "
                    "“Use its text's dates” undoes it."
                )
                with gr.Row(equal_height=True):
                    date_pick = gr.Dropdown(
                        label="Report", choices=[], value=None, allow_custom_value=True, scale=3, elem_id="arolwg-date-pick"
                    )
                    date_start = gr.Textbox(label="First day", placeholder="2019-03-04", max_lines=1, scale=1, elem_id="arolwg-date-start")
                    date_end = gr.Textbox(label="Last day (if not the same)", placeholder="2019-03-08", max_lines=1, scale=1, elem_id="arolwg-date-end")
                    date_btn = gr.Button("Save dates", variant="secondary", scale=1, min_width=110, elem_id="arolwg-date-save")
                    undate_btn = gr.Button("Use its text's dates", variant="secondary", scale=1, min_width=110, elem_id="arolwg-date-clear")
                reports_status = gr.Markdown(elem_id="arolwg-reports-status", min_height=60)

            # ------------------------------------------------------------ findings
            with gr.Tab("Findings", id="findings") as findings_tab:
                gr.Markdown(
                    "### Findings of every report\nEach report's strengths and what needs to improve, under its own "
                    "headings (service and principle), in the report's words; for a report written as prose, its "
                    "*must* and *should* sentences."
                )
                findings_state = gr.State(())  # this session's findings, in table order
                with gr.Row(equal_height=True):
                    f_council = gr.Dropdown(
                        label="Council", choices=[("All councils", "")], value="", allow_custom_value=True, elem_id="arolwg-f-council"
                    )
                    f_year = gr.Dropdown(label="Year", choices=[("Any year", "")], value="", allow_custom_value=True, elem_id="arolwg-f-year")
                    f_service = gr.Dropdown(label="Service", choices=H.SERVICE_CHOICES, value="", elem_id="arolwg-f-service")
                    f_theme = gr.Textbox(label="Theme", placeholder="e.g. well-being, voice, prevention", elem_id="arolwg-f-theme")
                    f_word = gr.Textbox(label="Word", placeholder="e.g. advocacy", elem_id="arolwg-f-word")
                with gr.Row():
                    f_show = gr.Button("Show findings", variant="primary", elem_id="arolwg-f-show")
                    f_csv = gr.DownloadButton("Download CSV", value=None, visible=False, elem_id="arolwg-f-csv")
                f_status = gr.Markdown(elem_id="arolwg-f-status")
                f_table = gr.Dataframe(
                    headers=H.FINDINGS_HEADERS,
                    value=[],
                    interactive=False,
                    wrap=True,
                    column_widths=["4%", "9%", "9%", "8%", "14%", "10%", "46%"],
                    max_height=400,  # the selected finding's card, below, stays in view
                    elem_id="arolwg-f-table",
                )
                f_card = gr.HTML(elem_id="arolwg-f-card")

            # ------------------------------------------------------------ evaluation
            with gr.Tab("Evaluation", id="evaluation"):
                gr.Markdown(
                    "### Benchmark\nRuns the evaluation questions against the current index and scores "
                    "retrieval, answers, abstentions and citations. The bundled set has 138 questions "
                    "about the two bundled reports; upload your own (JSON Lines) to test other reports."
                )
                with gr.Row(equal_height=False):
                    qa_file = gr.File(label="Q&A set (optional, .jsonl)", file_types=[".jsonl", ".json"], elem_id="arolwg-qa")
                    with gr.Column():
                        configs = gr.CheckboxGroup(
                            label="Configurations",
                            choices=eval_configs,
                            value=[c for c in ("default",) if c in eval_configs],
                            info="default: Arolwg as shipped; tutorial: the LangChain RAG tutorial baseline; "
                            "dense / bm25 / hybrid: one retriever each.",
                            elem_id="arolwg-configs",
                        )
                        eval_btn = gr.Button("Run the benchmark", variant="primary", elem_id="arolwg-eval")
                # min_height: the progress bar is drawn over this box, so it needs room to show.
                eval_status = gr.Markdown(elem_id="arolwg-eval-status", min_height=60)
                # The table has the page's width (five configurations' columns need it), the chart goes below.
                eval_table = gr.Markdown(elem_id="arolwg-eval-table")
                eval_chart = gr.Image(
                    label="Chart", type="filepath", visible=False, height=460, buttons=["download", "fullscreen"], elem_id="arolwg-eval-chart"
                )
                eval_files = gr.File(label="Full results (Markdown, JSON)", visible=False, file_count="multiple", elem_id="arolwg-eval-files")

        # ================================================================ wiring

        def refresh(council_value=""):
            reports = engine.reports()
            councils = H.council_choices(reports)
            council_value = council_value if council_value in {v for _, v in councils} else ""
            return (
                render.reports_table_html(reports, engine.has_original),
                gr.Dropdown(choices=councils, value=council_value),
                gr.Dropdown(choices=H.report_choices(reports, council_value), value=""),
                gr.Dropdown(choices=[(H.report_label(r) + f" \u2014 {r.report_id}", r.report_id) for r in reports], value=None),
                reports,
                gr.Dropdown(choices=H.when_choices(reports)),
                gr.Dropdown(choices=H.date_choices(reports), value=None),
            )

        refresh_outputs = [reports_html, council, report, remove_pick, reports_state, when, date_pick]
        demo.load(refresh, None, refresh_outputs, api_visibility="private", queue=False)

        council.change(
            lambda c, reps: gr.Dropdown(choices=H.report_choices(reps, c or ""), value=""),
            [council, reports_state],
            report,
            api_visibility="private",
            queue=False,
        )

        def on_ask(q, chat_state, council_v, report_v, mode_v, k_v, when_v=""):
            options = H.AskOptions(council_v or "", report_v or "", mode_v or "extractive", int(k_v) if k_v else None, when_v or "")
            for i, upd in enumerate(H.ask(engine, q, chat_state, options)):
                if upd.warning:
                    gr.Warning(upd.warning)
                # The first update clears the question box; later ones leave what the user types next.
                yield upd.messages, upd.state, upd.copy_text, ("" if i == 0 and not upd.warning else gr.skip())

        ask_inputs = [question, state, council, report, answerer, k, when]
        ask_outputs = [chatbot, state, copy_text, question]
        ask_kwargs = dict(show_progress="hidden", concurrency_limit=4, concurrency_id="ask")
        question.submit(on_ask, ask_inputs, ask_outputs, api_name="ask", **ask_kwargs)
        ask_btn.click(on_ask, ask_inputs, ask_outputs, api_visibility="private", **ask_kwargs)
        chatbot.change(None, None, None, js=SCROLL_JS, api_visibility="private", queue=False)

        def on_example(evt):
            value = evt.value
            return value.get("text", "") if isinstance(value, dict) else str(value)

        # Gradio passes the clicked example by this annotation; set as an object, because
        # postponed (string) annotations cannot name the locally imported ``gr``.
        on_example.__annotations__["evt"] = gr.SelectData

        chatbot.example_select(on_example, None, question, api_visibility="private", queue=False).then(
            on_ask, ask_inputs, ask_outputs, api_visibility="private", **ask_kwargs
        )

        def on_new():
            fresh, messages, copy = H.new_conversation()
            return messages, fresh, copy, ""

        new_btn.click(on_new, None, [chatbot, state, copy_text, question], api_name="new_conversation", queue=False)
        chatbot.clear(on_new, None, [chatbot, state, copy_text, question], api_visibility="private", queue=False)
        copy_btn.click(None, copy_text, None, js=COPY_JS, api_visibility="private", queue=False)

        # ---- reports
        def on_upload(files, council_v, progress=gr.Progress()):
            message = H.upload_reports(engine, files, progress=_gr_progress(progress))
            return (message, None, *refresh(council_v))

        add_btn.click(
            on_upload,
            [uploads, council],
            [reports_status, uploads, *refresh_outputs],
            api_name="upload_reports",
            concurrency_limit=1,
            concurrency_id="index-write",
        )

        # Removing is a two-step action: "Remove…" asks, "Yes, remove it" does it.
        remove_btn.click(
            lambda pick: (gr.Row(visible=bool(pick)), f"Remove **{pick}** from the index?" if pick else "Pick a report to remove first."),
            remove_pick,
            [confirm_row, reports_status],
            api_visibility="private",
            queue=False,
        )
        cancel_btn.click(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="private", queue=False)

        def on_remove(pick, council_v, progress=gr.Progress()):
            message = H.remove_report(engine, pick, progress=_gr_progress(progress))
            return (message, gr.Row(visible=False), *refresh(council_v))

        confirm_btn.click(
            on_remove,
            [remove_pick, council],
            [reports_status, confirm_row, *refresh_outputs],
            api_name="remove_report",
            concurrency_limit=1,
            concurrency_id="index-write",
        )

        def on_date(pick, start, end, council_v):
            saved, message = H.date_report(engine, pick, start, end)
            *rest, _ = refresh(council_v)
            # Refused: the report and the days typed stay, so they can be corrected.
            keep = gr.Dropdown(choices=H.date_choices(rest[4]), value=None if saved else pick)
            return (message, "" if saved else gr.skip(), "" if saved else gr.skip(), *rest, keep)

        date_btn.click(
            on_date,
            [date_pick, date_start, date_end, council],
            [reports_status, date_start, date_end, *refresh_outputs],
            api_name="set_report_dates",
            concurrency_limit=1,
            concurrency_id="index-write",
        )

        def on_undate(pick, council_v):
            saved, message = H.date_report(engine, pick, None, clear=True)
            *rest, _ = refresh(council_v)
            return (message, *rest, gr.Dropdown(choices=H.date_choices(rest[4]), value=None if saved else pick))

        undate_btn.click(
            on_undate,
            [date_pick, council],
            [reports_status, *refresh_outputs],
            api_name="clear_report_dates",
            concurrency_limit=1,
            concurrency_id="index-write",
        )

        # ---- findings
        def on_findings(c, y, sv, th, w):
            view = H.show_findings(engine, c, y, sv, th, w)
            return (
                view.findings,
                view.message,
                gr.Dataframe(value=view.table or None, headers=H.FINDINGS_HEADERS),
                gr.DownloadButton(value=view.csv_path, visible=bool(view.csv_path)),
                "",
            )

        f_inputs = [f_council, f_year, f_service, f_theme, f_word]
        f_outputs = [findings_state, f_status, f_table, f_csv, f_card]
        f_show.click(on_findings, f_inputs, f_outputs, api_name="findings")
        for box in (f_theme, f_word):
            box.submit(on_findings, f_inputs, f_outputs, api_visibility="private")
        for pick in (f_council, f_year, f_service):
            pick.input(on_findings, f_inputs, f_outputs, api_visibility="private")

        def on_findings_tab(c, y, sv, th, w):
            reports = engine.reports()
            return (
                gr.Dropdown(choices=H.council_choices(reports)),
                gr.Dropdown(choices=H.year_choices(reports)),
                *on_findings(c, y, sv, th, w),
            )

        findings_tab.select(on_findings_tab, f_inputs, [f_council, f_year, *f_outputs], api_visibility="private")

        def on_finding_row(rows, evt):
            value = getattr(evt, "row_value", None)  # the row as shown (sorted or not): its "#" finds the finding
            return H.finding_card(engine, rows, value[0] if value else None)

        on_finding_row.__annotations__["evt"] = gr.SelectData  # as on_example's

        f_table.select(on_finding_row, [findings_state], f_card, api_visibility="private", queue=False)

        # ---- evaluation
        def show_eval(outcome: H.EvalOutcome):
            return (
                outcome.message,
                outcome.table,
                gr.Image(value=outcome.chart, visible=bool(outcome.chart)),
                gr.File(value=outcome.files or None, visible=bool(outcome.files)),
            )

        def on_eval(qa, chosen, progress=gr.Progress()):
            return show_eval(H.run_evaluation(engine, qa, chosen, progress=_gr_progress(progress)))

        eval_outputs = [eval_status, eval_table, eval_chart, eval_files]
        # The tab opens on the last saved run (eval/results), or says how to run one.
        demo.load(lambda: show_eval(H.last_evaluation()), None, eval_outputs, api_visibility="private", queue=False)
        eval_btn.click(
            on_eval,
            [qa_file, configs],
            eval_outputs,
            api_name="evaluate",
            concurrency_limit=1,
            concurrency_id="eval",
        )

    demo.arolwg_engine = engine  # for launch() (warm-up) and tests
    return demo


def _gr_progress(progress):
    """Adapt ``gr.Progress`` to the ``progress(done, total, message)`` callbacks of index/eval."""

    def update(done: int, total: int, message: str = "") -> None:
        try:
            progress((int(done), int(total) if total else None), desc=message or None)
        except Exception as err:  # noqa: BLE001 - a progress bar must never break the work it reports
            log.debug("progress update failed: %s", err)

    return update


def launch_kwargs(settings) -> dict:
    """The ``Blocks.launch`` arguments Arolwg always uses (theme, styles, limits, privacy).

    With a password set, failed sign-ins are throttled (:mod:`ui.auth`): the throttle is an ASGI
    middleware in front of Gradio's ``/login``, given to its FastAPI app through ``app_kwargs``.
    """
    from starlette.middleware import Middleware

    from ui.auth import UploadedFilesOnlyMiddleware
    from ui.handlers import gradio_upload_dir

    auth = parse_auth(settings.auth)
    options = {
        "theme": theme(),
        "css": css(),
        "auth": auth,
        "auth_message": "This Arolwg is password-protected: sign in with the account you were given.",
        "max_file_size": f"{max(1, int(settings.max_file_mb))}mb",
        "footer_links": ["api"],
        "run_history": False,  # questions can be sensitive: do not keep them in the browser
        "show_error": False,  # handlers report errors as plain sentences themselves
        "favicon_path": None,
        # An event may name only files uploaded through the page, never other files of the server.
        "app_kwargs": {"middleware": [Middleware(UploadedFilesOnlyMiddleware, upload_dir=gradio_upload_dir())]},
    }
    if auth:
        from starlette.middleware import Middleware

        from ui.auth import LoginThrottle, LoginThrottleMiddleware

        throttle = LoginThrottle.from_settings(settings)
        options.setdefault("app_kwargs", {}).setdefault("middleware", []).append(
            Middleware(LoginThrottleMiddleware, throttle=throttle)
        )
        options["auth_message"] += (
            f" After {settings.login_client_failures} failed attempts, signing in pauses for a while "
            "(seconds at first, a few minutes at most)."
        )
    return options


def launch(settings=None, host: str | None = None, port: int | None = None, **kw):
    """Start the web chat (blocking unless ``prevent_thread_lock=True``); returns the Blocks.

    ``index_dir``, ``embeddings`` and ``engine`` go to :func:`build_app`; other keywords to
    ``gr.Blocks.launch``. Host and port default to the settings (127.0.0.1:7860).

    >>> demo = launch(port=7861, prevent_thread_lock=True)  # doctest: +SKIP
    >>> demo.close()                                         # doctest: +SKIP
    """
    from rag.settings import get_settings

    settings = settings or get_settings()
    app_kw = {k: kw.pop(k) for k in ("index_dir", "embeddings", "engine") if k in kw}
    demo = kw.pop("app", None) or build_app(settings, **app_kw)
    options = launch_kwargs(settings)
    options.update(kw)
    engine = getattr(demo, "arolwg_engine", None)
    if engine is not None:
        from ui.originals import routes

        # /original/<report id>: the original files the index keeps, behind the same sign-in.
        options.setdefault("app_kwargs", {}).setdefault("routes", []).extend(routes(engine))
        # Load the embedding model and the index (IndexStore.warm) while the page loads, not on the
        # first question.
        threading.Thread(target=engine.warm_up, name="arolwg-warm-up", daemon=True).start()
    demo.queue(default_concurrency_limit=2)
    demo.launch(
        server_name=host or settings.host,
        server_port=int(port if port is not None else settings.port),
        **options,
    )
    return demo


# -------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``arolwg chat``."""
    parser.add_argument("--host", metavar="ADDRESS", help="address to listen on (default 127.0.0.1, i.e. this computer only; "
                        "0.0.0.0 shares it on the network: set --auth then)")
    parser.add_argument("--port", type=int, metavar="N", help="port to listen on (default 7860)")
    parser.add_argument("--index", type=Path, metavar="DIR", help="index folder (default: AROLWG_INDEX_DIR or ~/.cache/arolwg/index)")
    parser.add_argument("--reports", type=Path, metavar="DIR",
                        help="reports folder to build the index from when it does not exist yet "
                        "(default: the bundled CIW reports)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="'user:password' (comma-separated for several) to require a sign-in; "
                        "default AROLWG_AUTH, empty: open")


def ensure_index(settings) -> None:
    """Build the index from ``settings.reports_dir`` when there is none yet, or bring one chunked
    by an older Arolwg up to date (keeping every report in it), with a progress bar."""
    from functools import partial

    from index import build_index
    from index.build import needs_upgrade, update_index
    from index.store import open_store
    from rag.errors import IndexMissingError, OutdatedIndexError

    try:
        if not needs_upgrade(settings.index_dir):
            open_store(settings.index_dir, settings)
            return
        raise OutdatedIndexError(settings.index_dir)
    except OutdatedIndexError:
        log.warning("The index at %s was written by an older Arolwg: upgrading it", settings.index_dir)
        build = partial(update_index, settings.index_dir, settings=settings)
    except IndexMissingError:
        log.warning("No index at %s yet: building it from %s", settings.index_dir, settings.reports_dir)
        build = partial(build_index, settings.reports_dir, settings.index_dir, settings=settings)
    from tqdm import tqdm

    bar = tqdm(total=0, unit="step", desc="Indexing reports", file=sys.stderr)

    def progress(done: int, total: int, message: str = "") -> None:
        bar.total = total
        bar.n = done
        if message:
            bar.set_postfix_str(message[:40], refresh=False)
        bar.refresh()

    try:
        report = build(progress=progress)
    finally:
        bar.close()
    for name, why in report.failed:
        log.warning("%s was not indexed: %s", name, why)
    log.warning("Index ready: %d passages in %.1f s", report.n_chunks, report.seconds)


def run(args: argparse.Namespace) -> int:
    """``arolwg chat``: build the index if missing, then serve the web chat until interrupted.

    User-facing errors (``ArolwgError``) propagate to the CLI, which prints their one sentence.
    """
    from rag.settings import get_settings

    settings = get_settings(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        index_dir=getattr(args, "index", None),
        reports_dir=getattr(args, "reports", None),
        auth=getattr(args, "auth", None),
    )
    parse_auth(settings.auth)  # a malformed password setting stops here, before any work
    ensure_index(settings)
    launch(settings)
    return 0
