"""The example alert rules and Grafana dashboard in docs/ops/ use only metrics (and labels) replyflow exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from replyflow.reply.metrics import ReplyMetrics
from replyflow.stream.metrics import StreamMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ops"
SELECTOR = re.compile(r"\b(replyflow_[a-z0-9_]+)(?:\{([^}]*)\})?")
BUILTIN = {"up"}  # Prometheus' own per-target metric


def exported() -> dict[str, set[str]]:
    """Every sample name the two registries can expose, with its label names."""
    names: dict[str, set[str]] = {}
    registries = [ReplyMetrics(lambda: {"queued": 0}).registry, StreamMetrics(lambda: 0.0).registry]
    for registry in registries:
        for family in registry.collect():
            labels = {"status"} if family.name == "replyflow_outbox_entries" else set()
            for sample in family.samples:
                labels |= set(sample.labels)
            metric = registry._names_to_collectors.get(family.name)  # labelled metrics without samples yet
            labels |= set(getattr(metric, "_labelnames", ()))
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
            for suffix in suffixes:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
            assert rule["labels"]["severity"] and rule["annotations"]["summary"]
            found.append((f"alert {rule['alert']}", rule["expr"]))
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["panels"], "the dashboard has no panels"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((f"panel {panel['title']}", target["expr"]))
    return found


def test_docs_use_only_exported_metrics_and_labels() -> None:
    names = exported()
    assert "replyflow_outbox_entries" in names and "replyflow_stream_consumer_lag" in names
    used: set[str] = set()
    for where, expr in expressions():
        matches = SELECTOR.findall(expr)
        assert matches or set(re.findall(r"\b([a-z_]+)\{", expr)) <= BUILTIN, f"{where}: no replyflow metric in {expr!r}"
        for name, selector in matches:
            assert name in names, f"{where}: {name} is not exported (known: {sorted(names)})"
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
                assert label in names[name], f"{where}: {name} has no label {label!r}"
            used.add(name)
    # every family is on the dashboard or in a rule: a metric nobody looks at is a metric nobody needs
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    assert families <= shown, f"exported but in neither rules nor dashboard: {sorted(families - shown)}"
