"""The round-trip report page: per-field table, charts per field and model, worst examples."""

from __future__ import annotations

from typing import Any

from simulacra.report.html import page, table


def render(data: dict[str, Any]) -> str:
    import plotly.graph_objects as go

    models = data["models"]
    fields = sorted({f for m in models.values() for f in m["fields"]})
    headers = ["field", "kind"] + [f"{m}: {k}" for m in models for k in ("match", "exact", "set F1")]
    rows = []
    for f in fields:
        kind = next(m["fields"][f]["kind"] for m in models.values() if f in m["fields"])
        row: list[Any] = [f, kind]
        for m in models.values():
            s = m["fields"].get(f, {})
            row += [s.get("match_rate", ""), s.get("exact_rate", ""),
                    s.get("set_f1", "") if kind == "list" else ""]
        rows.append(row)
    summary = table(["model", "records", "record exact", "grounded texts", "failures"], [
        [name, m["records"], m["record_exact_rate"], m["grounding_rate"], m["failures"] or "none"]
        for name, m in models.items()])

    by_field = go.Figure([go.Bar(name=name, x=fields, y=[m["fields"].get(f, {}).get("match_rate", 0)
                                                         for f in fields]) for name, m in models.items()])
    by_field.update_layout(barmode="group", yaxis={"range": [0, 1], "title": "match rate"},
                           height=380, margin={"t": 20})
    exact = go.Figure([go.Bar(name=name, x=fields, y=[m["fields"].get(f, {}).get("exact_rate", 0)
                                                      for f in fields]) for name, m in models.items()])
    exact.update_layout(barmode="group", yaxis={"range": [0, 1], "title": "exact rate"},
                        height=320, margin={"t": 20})
    reasons = sorted({r for m in models.values() for r in m["failures"]}) or ["none"]
    failures = go.Figure([go.Bar(name=name, x=reasons, y=[m["failures"].get(r, 0) for r in reasons])
                          for name, m in models.items()])
    failures.update_layout(barmode="group", yaxis={"title": "count"}, height=300, margin={"t": 20})

    sections: list[tuple[str, Any]] = [("Summary", summary), ("Per field", table(headers, rows)),
                                       ("Match rate per field and model", by_field),
                                       ("Exact-match rate per field and model", exact),
                                       ("Failures by reason", failures)]
    for name, m in models.items():
        worst = [[w["text"], w["gold"], w["extracted"] if w["extracted"] is not None else w["error"],
                  w["mismatches"]] for w in m["worst"]]
        sections.append((f"Worst examples: {name}",
                         table(["text", "gold", "extracted", "fields wrong"], worst)))
    cfg = data["config"]
    meta = (f"schema {data['schema']} · n={cfg['n']} · seed {cfg.get('seed')} · "
            f"timings {data.get('timings')}")
    return page(f"Round trip: {data['schema']}", sections, meta)
