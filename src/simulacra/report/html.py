"""Self-contained HTML: plotly's JavaScript is inlined once, so a report opens offline."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right} .bad{color:#b00020}
pre{white-space:pre-wrap;margin:0;font-size:.8rem;max-width:28rem}
.meta{color:#555;font-size:.9rem}
"""


def table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, float | int) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{cell}</td>')
            elif isinstance(cell, dict | list):
                shown = json.dumps(cell, indent=1, ensure_ascii=False)
                cells.append(f"<td><pre>{html.escape(shown)}</pre></td>")
            else:
                cells.append(f"<td><pre>{html.escape(str(cell))}</pre></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def page(title: str, sections: list[tuple[str, Any]], meta: str = "") -> str:
    """An HTML page of (heading, content) sections; content is HTML text or a plotly figure."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if meta:
        parts.append(f"<p class='meta'>{meta}</p>")
    first_figure = True
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if hasattr(content, "to_html"):
            parts.append(content.to_html(full_html=False, include_plotlyjs="inline" if first_figure
                                         else False, config={"displayModeBar": False}))
            first_figure = False
        else:
            parts.append(str(content))
    parts.append("</body></html>")
    return "".join(parts)


def write_report(directory: str | Path, data: dict[str, Any], html_text: str,
                 *, name: str = "report") -> tuple[Path, Path]:
    """Write `name`.json and `name`.html into `directory` (created if missing)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / f"{name}.json", out / f"{name}.html"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    html_path.write_text(html_text, encoding="utf-8")
    return json_path, html_path
