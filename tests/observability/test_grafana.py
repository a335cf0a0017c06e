"""The Grafana dashboard in docs/ reads only metrics the box exports, by labels they carry."""

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
