"""``/summary-pipeline/metrics``: the status API's figures for Prometheus, by hand on small inputs, then served."""

import datetime as dt

import pytest

from summary_airflow.metrics import config_metrics, prometheus_text
from tests.airflow.test_pipeline_page import site  # noqa: F401  # the tables and reports

pytestmark = pytest.mark.airflow


def _samples(text):
    """{(metric, config): value} of an exposition text; every metric has its HELP and TYPE lines first."""
    samples, declared = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            metric, label = series.split("{", 1)
            assert metric in declared, f"{metric} sampled before its TYPE line"
            samples[(metric, label.removeprefix('config="').removesuffix('"}'))] = float(value)
    return samples


def test_a_config_behind_with_a_failed_gate_and_a_held_lock():
    status = {"unapplied_source_records": True, "run_lock": {"owner": "forward-1"}, "forward_months_since_maintenance": 5,
              "source_committed_at": "2024-07-01T10:00:00+00:00", "summary_committed_at": None}  # fmt: skip
    page = {
        "months": [
            {"month": "2024-01", "summary_rows": 3, "source_records": 3, "missing_in_summary": False},
            {"month": "2024-02", "summary_rows": 0, "source_records": 2, "missing_in_summary": True},
            {"month": "2024-04", "summary_rows": 0, "source_records": 1, "missing_in_summary": True},
        ],
        "quality_gate": {"passed": False, "violations": 4, "finished_at": "2024-07-01 12:09:00Z"},
    }
    assert config_metrics(status, page) == {
        "summary_pipeline_up": 1,
        "summary_pipeline_unapplied_source_records": 1,
        "summary_pipeline_run_lock_held": 1,
        "summary_pipeline_forward_months_since_maintenance": 5,
        "summary_pipeline_source_commit_timestamp_seconds": 1719828000.0,
        "summary_pipeline_months_behind": 3,  # 2024-01 -> 2024-04
        "summary_pipeline_months_missing": 2,
        "summary_pipeline_quality_gate_passed": 0,
        "summary_pipeline_quality_gate_violations": 4,
        "summary_pipeline_quality_gate_timestamp_seconds": 1719835740.0,
    }


def test_an_unreadable_config_is_down_and_names_are_escaped():
    text = prometheus_text([('odd"name', None, None), ("fine", {"unapplied_source_records": False}, {})])
    samples = _samples(text)
    assert samples[("summary_pipeline_up", 'odd\\"name')] == 0 and samples[("summary_pipeline_up", "fine")] == 1
    assert ("summary_pipeline_unapplied_source_records", 'odd\\"name') not in samples  # not read: not reported as 0
    assert samples[("summary_pipeline_unapplied_source_records", "fine")] == 0
    assert text.count("# TYPE summary_pipeline_up gauge") == 1 and text.endswith("\n")


def test_the_metrics_route_serves_what_the_tables_and_reports_say(site):  # noqa: F811
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    client = TestClient(create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), require_login=False))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    # summary: source months 2024-01..04, summary rows in 01, 02 and 04 (the fixture); never backfilled; the
    # newest gate (minute 9 of 2024-07-01 12:00 UTC) broke 4 rows
    assert samples[("summary_pipeline_up", "summary")] == 1
    assert samples[("summary_pipeline_unapplied_source_records", "summary")] == 1
    assert samples[("summary_pipeline_months_missing", "summary")] == 1
    assert samples[("summary_pipeline_months_behind", "summary")] == 0
    assert samples[("summary_pipeline_quality_gate_passed", "summary")] == 0
    assert samples[("summary_pipeline_quality_gate_violations", "summary")] == 4
    assert (
        samples[("summary_pipeline_quality_gate_timestamp_seconds", "summary")]
        == dt.datetime(2024, 7, 1, 12, 9, tzinfo=dt.timezone.utc).timestamp()
    )
    assert samples[("summary_pipeline_run_lock_held", "summary")] == 0
    # summary_eu has no tables yet: readable, nothing to apply, no months or gate to report
    assert samples[("summary_pipeline_up", "summary_eu")] == 1
    assert samples[("summary_pipeline_unapplied_source_records", "summary_eu")] == 0
    assert ("summary_pipeline_months_missing", "summary_eu") not in samples
