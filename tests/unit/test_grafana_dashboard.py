"""``compose/grafana/faasflow.json``: a dashboard Grafana imports (a Prometheus data source
asked for on import), whose every query names only metrics the gateway exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Metric

from pipeline.gateway.metrics import GatewayMetrics
from pipeline.observability.collector import Families

DASHBOARD = Path(__file__).resolve().parents[2] / "compose" / "grafana" / "faasflow.json"
METRIC_NAME = re.compile(r"\bfaasflow_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def exposed() -> set[str]:
    """The sample names of every family /metrics has: the process's and the cluster's."""
    families: list[Metric] = [*GatewayMetrics().registry.collect(), *Families().all()]
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        yield variable["query"]["query"]


def test_every_query_names_only_metrics_the_gateway_exposes(dashboard: dict[str, Any]) -> None:
    named = {name for expr in queries(dashboard) for name in METRIC_NAME.findall(expr)}

    assert named, "no query names a faasflow metric"
    assert named <= exposed(), sorted(named - exposed())


def test_the_issues_figures_each_have_a_panel(dashboard: dict[str, Any]) -> None:
    named = {name for expr in queries(dashboard) for name in METRIC_NAME.findall(expr)}
    assert {"faasflow_function_invocations_total", "faasflow_function_duration_seconds_bucket",
            "faasflow_function_cold_starts_total", "faasflow_warm_containers",
            "faasflow_source_events_total", "faasflow_source_consumer_lag",
            "faasflow_dead_letters", "faasflow_replay_events_done",
            "faasflow_http_requests_total", "faasflow_up"} <= named


def test_it_imports_with_a_prometheus_data_source_of_the_importers_choice(
        dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] == 39
    (source,) = dashboard["__inputs"]
    assert (source["name"], source["pluginId"]) == ("DS_PROMETHEUS", "prometheus")
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
