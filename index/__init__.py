"""Indexing: load, clean, chunk, embed and store reports."""

from index.build import (
    IndexReport,
    build_index,
    clear_report_dates,
    list_reports,
    set_report_dates,
    source_text,
    update_index,
)
from index.store import ReportInfo

__all__ = [
    "IndexReport", "ReportInfo", "build_index", "clear_report_dates", "list_reports", "set_report_dates", "source_text",
    "update_index",
]
