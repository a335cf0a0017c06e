"""The Grafana dashboard in docs/ reads only metrics the box exports, by labels they carry; its
error-rate panel divides a subset of its denominator's requests (never past 100%, retried and
count_tokens failures included); the README's table of metrics lists every family the box
exports, with its labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openai
import pytest
from prometheus_client import Counter, Gauge, Histogram

from codelace_box import metrics
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import Samples, scrape, total

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


# one side of the error-rate panel's division: sum by (provider) (rate(METRIC{MATCHERS}[5m]))
SIDE = re.compile(r"sum by \(provider\) \(rate\((codelace_[a-z_]+)\{([^}]*)\}\[5m\]\)\)")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!=|!~|=)\s*"([^"]*)"')
Side = tuple[str, frozenset[tuple[str, str, str]]]


def error_rate_sides() -> tuple[Side, Side]:
    """The error-rate panel's numerator and denominator: metric and label matchers."""
    dashboard = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in dashboard["panels"] if "error rate" in p["title"].lower()]
    ((target,),) = [panel["targets"]]
    numerator, _, denominator = target["expr"].partition(" / ")
    sides = []
    for text in (numerator, denominator):
        match = SIDE.fullmatch(text.strip())
        assert match, text
        sides.append((match[1], frozenset(MATCHER.findall(match[2]))))
    return sides[0], sides[1]


def test_the_error_rate_divides_a_subset_of_its_denominators_requests() -> None:
    """The numerator counts the same metric as the denominator with more matchers: every
    request it counts, the denominator counts (so the rate cannot pass 100%)."""
    (top, top_matchers), (bottom, bottom_matchers) = error_rate_sides()
    assert top == bottom, f"{top} counts requests {bottom} may not"
    assert bottom_matchers <= top_matchers
    assert top_matchers - bottom_matchers, "the numerator selects some of them"


def panel_ratio(samples: Samples, side: Side, provider: str) -> float:
    """What one side of the panel's division adds up to in a scrape (counters for rates)."""
    name, matchers = side
    wanted = {label: value for label, op, value in matchers if op == "="}
    return total(samples, name, provider=provider, **wanted)


def test_the_error_rate_with_retried_failures_stays_the_share_of_failed_calls(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=("sk-fake-key-0001", "sk-fake-key-0002"), gateway={"max_retries": 1})
    _, key = box.new_user("10")
    sdk = box.sdk(key)
    fake.key_status.update({"sk-fake-key-0001": 503, "sk-fake-key-0002": 503})
    for _ in range(2):  # each: both keys fail, two failed attempts, one failed call
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    fake.key_status.clear()
    assert sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    samples = scrape(box)
    assert total(samples, "codelace_inference_requests_total") == 3
    numerator, denominator = error_rate_sides()
    rate = panel_ratio(samples, numerator, "fake") / panel_ratio(samples, denominator, "fake")
    rows = dict(box.query("SELECT status, COUNT(*) FROM usage_record GROUP BY status"))
    assert rows == {"error": 2, "ok": 1}
    assert rate == pytest.approx(2 / 3)
