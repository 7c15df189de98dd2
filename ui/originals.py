"""Serving each report's original file (PDF, DOCX, HTML, text) from the index: ``/original/<id>``.

The source cards of the chat link a PDF at its page (``original/<id>#page=7``, which browsers'
PDF viewers honour) and other formats as a download; the Reports tab offers every original.

Only files the index holds are served: the id in the URL is looked up in the live manifest
(:func:`index.build.original_file`), so no path from the user ever reaches the file system, and an
id the index does not hold is a 404. With ``AROLWG_AUTH`` set, the route needs the same sign-in as
the chat (Gradio's session cookie). A PDF opens in the browser (``application/pdf``); any other
format is sent as an attachment, never shown inline: an uploaded HTML report must not run in the
app's own origin.

>>> original_url("cardiff report (2).pdf", page=7)
'original/cardiff%20report%20%282%29.pdf#page=7'
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from rag.pages import has_pages

if TYPE_CHECKING:
    from ui.handlers import Engine

log = logging.getLogger(__name__)

PREFIX = "original"
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
NOT_FOUND = "This report is not in the index (it may have been removed), so its original file cannot be opened."
NO_COPY = "The index holds no copy of this report's original file: add the report again to keep one."
SIGN_IN = "Sign in to the chat first, then open the report again."


def original_url(report_id: str, page: int | None = None) -> str:
    """The link to a report's original, relative to the chat's page (so it works under a proxy's
    path prefix too); a PDF's link opens it at ``page``."""
    url = f"{PREFIX}/{quote(report_id, safe='')}"
    return f"{url}#page={int(page)}" if page and has_pages(report_id) else url


def signed_in(request) -> bool:
    """Whether the request may see the chat: no password is set, or it carries the session cookie
    Gradio gave at sign-in (the check Gradio's own routes make)."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    if getattr(app, "auth_dependency", None) is not None:
        return app.auth_dependency(request) is not None
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(f"access-token-unsecure-{cookie_id}")
    return token is not None and token in getattr(app, "tokens", {})


def original_response(engine: Engine, report_id: str, request=None):
    """The HTTP response for ``/original/<report_id>``: the file, or a plain sentence (401, 404)."""
    from starlette.responses import FileResponse, PlainTextResponse

    if request is not None and not signed_in(request):
        return PlainTextResponse(SIGN_IN, status_code=401)
    if report_id not in engine.report_meta():
        return PlainTextResponse(NOT_FOUND, status_code=404)
    path = engine.original(report_id)
    if path is None or not Path(path).is_file():
        return PlainTextResponse(NO_COPY, status_code=404)
    suffix = Path(report_id).suffix.lower()
    media = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(report_id)[0] or "application/octet-stream"
    inline = suffix == ".pdf"
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}
    if not inline:
        headers["Content-Security-Policy"] = "sandbox"
    return FileResponse(
        path, media_type=media, filename=report_id, headers=headers,
        content_disposition_type="inline" if inline else "attachment",
    )


def routes(engine: Engine) -> list:
    """The Starlette route serving originals, for the app's ``app_kwargs["routes"]``."""
    from starlette.routing import Route

    def endpoint(request):  # a plain function: Starlette runs it in a worker thread
        return original_response(engine, request.path_params["report_id"], request)

    return [Route(f"/{PREFIX}/{{report_id:path}}", endpoint, methods=["GET", "HEAD"], name="arolwg-original")]
