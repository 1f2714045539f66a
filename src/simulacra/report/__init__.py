"""Reports: self-contained HTML pages with plotly charts, next to the JSON they are drawn from."""

from simulacra.report.html import page, write_report

__all__ = ["page", "write_report"]
