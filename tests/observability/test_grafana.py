"""The Grafana dashboard in docs/ reads only metrics the box exports, by labels they carry; the
README's table of metrics lists every family the box exports, with its labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from codelace_box import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SAMPLE_SUFFIXES = {Counter: ("_total",), Histogram: ("_bucket", "_count", "_sum"), Gauge: ("",)}


def exported() -> dict[str, set[str]]:
    """Every sample name /metrics shows for the box's families, with their label names."""
    names: dict[str, set[str]] = {"codelace_open_holds": set(), "codelace_open_holds_usd": set()}
    names["codelace_database_up"] = set()  # these three are read at scrape time
    for family in vars(metrics).values():
        for kind, suffixes in SAMPLE_SUFFIXES.items():
            if isinstance(family, kind):
                for suffix in suffixes:
                    names[family._name + suffix] = set(family._labelnames)
    return names


def test_every_panel_queries_an_exported_metric_by_its_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    assert "codelace_http_requests_total" in known and "codelace_active_streams" in known
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 14
    for expr in exprs:
        used = re.findall(r"\b(codelace_[a-z_0-9]+)", expr)
        assert used and all(name in known for name in used), expr
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label == "le" or all(label in known[n] for n in used), (label, expr)


def readme_metrics() -> dict[str, set[str]]:
    """The README's table of metric families: name -> labels."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("\n## Observability\n") :]
    rows = re.findall(r"^\| (`codelace_[^|]*) \|([^|]*)\|", section, re.M)
    return {
        name: {label.strip() for label in labels.split(",") if label.strip()}
        for names, labels in rows
        for name in re.findall(r"`([a-z_]+)`", names)
    }


def test_the_readme_lists_every_exported_family_with_its_labels() -> None:
    documented = readme_metrics()
    known = exported()
    families = {n for n in known if not n.endswith(("_count", "_sum"))}
    shown = {n.removesuffix("_bucket") for n in families}
    assert len(documented) >= 12, "the table parsed"
    assert set(documented) == shown, (
        f"exported but not in the README: {sorted(shown - set(documented))}; "
        f"in the README but not exported: {sorted(set(documented) - shown)}"
    )
    for name, labels in documented.items():
        assert labels == known.get(name, known.get(name + "_bucket")), name
