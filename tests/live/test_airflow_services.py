"""The DAGs under real Airflow services: scheduler, triggerer, dag-processor and api-server as separate
processes on a PostgreSQL metadata database, driven only through the REST API, as the UI drives them.

What ``airflow dags test`` cannot show: the plugin loader and the triggerer
import our code on their own (no DAG file ran first), the source's watcher
really runs in the triggerer and its events start runs, and catch-up is the
scheduler's.

``make test`` runs the reduced form (one initial month, one monthly run, a
backfill started by the source's watcher that applies a Case I, a Case II and
a Case III record, another for a MERGE);
``make test-airflow-live`` (SUMMARY_LIVE_FULL=1) runs the whole scenario: two
monthly runs after the chained initial load, a stale version among the late
records, a dry run with a filter, and a month re-run.
"""

import json
import os
import time

import pytest

from spark_jobs.storage.iceberg import current_snapshot
from tests.live.services import LATENCIES, AirflowServices, Postgres, postgres_bindir, seconds_since, wait_for
from tests.stages.test_backfill import backfill as backfill_in_process
from tests.support import append_source, assert_matches_model, load, merge_source, model_config, record, source_records
from tests.support_browser import browser, colour_counts, screenshot
from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.live, pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]
FULL = os.environ.get("SUMMARY_LIVE_FULL") == "1"
NAME = "live"
RUN_TIMEOUT = 900 if FULL else 600


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A PostgreSQL cluster of the test's own; SQLite only when PostgreSQL cannot be had (the reason is printed)."""
    bindir, reason = postgres_bindir()
    if bindir is None:
        print(f"\nlive tier: falling back to SQLite: {reason}")
        yield f"sqlite:///{tmp_path_factory.mktemp('airflow-db') / 'airflow.db'}"
        return
    postgres = Postgres(bindir)
    try:
        yield postgres.start().url
    finally:
        postgres.stop()


@pytest.fixture(scope="module")
def webhook():
    """Where the config's alerts go: a receiver on loopback, up before the services start."""
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, spark_warehouse, webhook):
    """The config and the months it schedules: forward catch-up stops at end_month, the backfill DAG is manual."""
    namespace = f"live_{os.getpid()}"
    initial = ("2024-01", "2024-02") if FULL else ("2024-01", "2024-01")
    monthly = ["2024-03", "2024-04"] if FULL else ["2024-02"]
    raw = model_config(namespace, name=NAME, airflow={
        "initial_load": {"start_month": initial[0], "end_month": initial[1]},
        "start_month": monthly[0], "end_month": monthly[-1],
        "backfill_schedule": None, "maintenance_schedule": None,
        "retries": 0, "backfill_poke_seconds": 5,
        "alerts": {"webhook": {"url_env": "SUMMARY_ALERT_LIVE_WEBHOOK"}},
    })  # fmt: skip
    landing = tmp_path_factory.mktemp("landing")  # an ingest from Airflow reads only under airflow.landing_dir
    raw["airflow"]["landing_dir"] = str(landing)
    configs = tmp_path_factory.mktemp("configs")
    (configs / f"{NAME}.json").write_text(json.dumps(raw))
    return {"namespace": namespace, "raw": raw, "configs": configs, "initial": initial, "monthly": monthly, "landing": landing}


@pytest.fixture(scope="module")
def airflow(database, scenario, spark_warehouse, tmp_path_factory, webhook):
    services = AirflowServices(
        tmp_path_factory.mktemp("airflow_home"),
        database,
        {
            "SUMMARY_CONFIGS_DIR": str(scenario["configs"]),
            "SUMMARY_WAREHOUSE": str(spark_warehouse),
            "SUMMARY_REPORTS_DIR": str(tmp_path_factory.mktemp("reports")),
            "AIRFLOW_CONN_SPARK_SUMMARY": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1",  # short-lived test JVMs start faster on C1
            "SUMMARY_ALERT_LIVE_WEBHOOK": f"{webhook.url}/alerts",
        },
    )
    try:
        yield services.start()
    finally:
        services.stop()
        print(f"\nlive tier logs: {services.home}")


def wait_for_dag(airflow, dag_id):
    return wait_for(f"the dag-processor to register {dag_id}", lambda: _dag_exists(airflow, dag_id), 180, 3)


def _dag_exists(airflow, dag_id):
    try:
        return airflow.get(f"/api/v2/dags/{dag_id}")
    except AssertionError:
        return None


def test_scheduled_catch_up_watched_backfill_and_manual_runs(spark, airflow, scenario):
    raw, cfg = load(scenario["namespace"], name=NAME, airflow=scenario["raw"]["airflow"])
    months = [*dict.fromkeys([scenario["initial"][0], scenario["initial"][1], *scenario["monthly"]])]
    on_time = [record(a, m, 10, bal=a * 100 + i, dpd=i * 20) for a in (1, 2, 3) for i, m in enumerate(months, 1)]
    append_source(spark, cfg, on_time)

    # 1. Unpause the forward DAG: the scheduler's catch-up runs the initial-load chain, then each month, in order.
    forward = f"{NAME}_forward"
    wait_for_dag(airflow, forward)
    airflow.unpause(forward)
    runs = wait_for(
        "the forward catch-up runs",
        lambda: _all_finished(airflow.dag_runs(forward), len(scenario["monthly"])),
        RUN_TIMEOUT,
        5,
    )
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    assert not failed, "\n".join(airflow.explain(forward, r) for r in failed)
    assert len(runs) == len(scenario["monthly"]), runs
    intervals = [r["data_interval_start"][:7] for r in runs]
    assert intervals == scenario["monthly"], f"one run per month, in order: {intervals}"
    assert all(a["end_date"] <= b["start_date"] for a, b in zip(runs, runs[1:], strict=False)), "months ran one after another"
    first = airflow.task_instances(forward, runs[0]["dag_run_id"])
    chain = [f"initial_load.forward_{m.replace('-', '_')}" for m in months if m < scenario["monthly"][0]]
    assert all(first[t]["state"] == "success" for t in chain + ["forward_month"]), {t: first[t]["state"] for t in first}
    assert all(first[a]["end_date"] <= first[b]["start_date"] for a, b in zip(chain, [*chain[1:], "forward_month"], strict=True))
    report = airflow.xcom(forward, runs[-1]["dag_run_id"], "forward_month")
    assert report["status"] == "ok" and report["mode"] == "forward", report
    gate = airflow.xcom(forward, runs[-1]["dag_run_id"], "quality_gate")
    # the gate judged the months its run applied: with one monthly run, that run also did the initial load
    first_applied = scenario["initial"][0] if len(runs) == 1 else scenario["monthly"][-1]
    assert gate["details"]["scope"] == {"start_month": first_applied, "end_month": None}, gate
    assert gate["details"]["violations"] == 0, gate
    forward_log = airflow.task_log(forward, runs[-1]["dag_run_id"], "forward_month")
    assert "run report:" in forward_log
    assert "Spark UI http://" in forward_log and "Spark event log of this stage" in forward_log  # where to watch it
    assert_matches_model(spark, cfg, raw, on_time)

    # 2. The backfill DAG, with the source watched (airflow.watch_source, the default): once it is unpaused, the
    # watcher in the triggerer announces what no backfill has applied and the run it starts applies it (the full
    # scenario; the reduced one saves a spark-submit: it applies it in the test's session before unpausing).
    backfill = f"{NAME}_backfill"
    if FULL:
        airflow.unpause(backfill)
        first_backfill = airflow.wait_for_run(
            backfill, _new_runs(airflow, backfill, set(), "the watcher's first run")[0], RUN_TIMEOUT
        )
        assert first_backfill["state"] == "success", airflow.explain(backfill, first_backfill["dag_run_id"])
    else:
        backfill_in_process(spark, cfg)
        airflow.unpause(backfill)
    status = airflow.get(f"/summary-pipeline/status/{NAME}")
    assert status["unapplied_source_records"] is False and status["backfill_applied_snapshot"], status

    # ... a run started with nothing new ends at once: its sensor skips (the watcher, not the run, waits) ...
    idle = airflow.wait_for_run(backfill, airflow.trigger(backfill)["dag_run_id"], RUN_TIMEOUT)
    idle_tasks = airflow.task_instances(backfill, idle["dag_run_id"])
    assert idle["state"] == "success", airflow.explain(backfill, idle["dag_run_id"])
    assert idle_tasks["wait_for_new_records"]["state"] == "skipped" and idle_tasks["classify"]["state"] == "skipped"
    assert airflow.log_errors() == [], "import or trigger-load errors in the services' logs"

    # ... late records land from a writer outside Airflow (this process): no trigger, no schedule; the watcher sees
    # the new snapshot and starts a run, and classify branches to the cases with accounts.
    late = [
        record(2, months[0], 30, bal=222),  # a correction of an old month: Case III
        record(4, months[0], 30, bal=4),  # a new account: Case I
        record(1, "2024-05", 30, bal=105),  # the account's next month: Case II
    ]
    if FULL:
        late.append(record(2, months[0], 3, bal=7))  # an older version arriving late: stale, must lose
    before = {r["dag_run_id"] for r in airflow.dag_runs(backfill)}
    landed_at = time.time()
    append_source(spark, cfg, late)
    assert airflow.get(f"/summary-pipeline/status/{NAME}")["unapplied_source_records"] is True
    [run_id] = _new_runs(airflow, backfill, before, "the source's watcher to start a backfill run")
    run = airflow.wait_for_run(backfill, run_id, RUN_TIMEOUT)
    LATENCIES["records appended by a writer outside Airflow (source watcher)"] = seconds_since(landed_at, run["end_date"])
    tasks = airflow.task_instances(backfill, run_id)
    assert run["state"] == "success", airflow.explain(backfill, run_id)
    [event] = airflow.get(f"/api/v2/dags/{backfill}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
    assert event["extra"]["from_trigger"] is True, event  # the watcher's event, with the snapshot it saw
    assert event["extra"]["payload"]["source_snapshot"] == current_snapshot(spark, cfg.source_table)[0], event
    classified = airflow.xcom(backfill, run_id, "classify")
    expected_cases = {"I": 1, "II": 1, "III": 1}
    assert classified["accounts_by_case"] == expected_cases, classified
    for case, task in (("I", "case_i"), ("II", "case_ii"), ("III", "case_iii")):
        assert tasks[task]["state"] == ("success" if expected_cases[case] else "skipped"), (task, tasks[task]["state"])
    assert airflow.xcom(backfill, run_id, "case_iii")["rows_written"]["summary"] >= 1
    assert '"mode": "case-iii"' in airflow.task_log(backfill, run_id, "case_iii")
    assert_matches_model(spark, cfg, raw, on_time + late)
    assert airflow.get(f"/summary-pipeline/status/{NAME}")["unapplied_source_records"] is False

    # ... a late delivery written by MERGE INTO from outside Airflow: account 3's first month corrected in place
    # with the same version, and a new account; the watcher starts the run that applies both.
    before = {r["dag_run_id"] for r in airflow.dag_runs(backfill)}
    merged_at = time.time()
    merge_source(spark, cfg, [record(3, months[0], 10, bal=333), record(5, months[1], 10, bal=5)])
    status = airflow.get(f"/summary-pipeline/status/{NAME}")
    assert status["unapplied_source_operations"] == {"overwrite": 1}, status
    [merged_run] = _new_runs(airflow, backfill, before, "the source's watcher to start a run for the MERGE")
    merged = airflow.wait_for_run(backfill, merged_run, RUN_TIMEOUT)
    assert merged["state"] == "success", airflow.explain(backfill, merged_run)
    LATENCIES["records merged by a writer outside Airflow (source watcher)"] = seconds_since(merged_at, merged["end_date"])
    merged_report = airflow.xcom(backfill, merged_run, "classify")
    assert merged_report["details"]["source_read"]["path"] == "touched-months", merged_report
    assert merged_report["accounts_by_case"] == {"I": 1, "II": 0, "III": 1}, merged_report
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
    assert airflow.get(f"/summary-pipeline/status/{NAME}")["unapplied_source_records"] is False

    if FULL:
        # 3. Manual runs with conf, as the UI's trigger form sends them.
        dry = airflow.wait_for_run(
            backfill, airflow.trigger(backfill, {"backfill_filter": "acct_id = 2", "dry_run": True})["dag_run_id"], RUN_TIMEOUT
        )
        assert dry["state"] == "success", airflow.explain(backfill, dry["dag_run_id"])
        dry_report = airflow.xcom(backfill, dry["dag_run_id"], "classify")
        assert dry_report["dry_run"] is True and dry_report["records_read"] >= 1, dry_report
        dry_tasks = airflow.task_instances(backfill, dry["dag_run_id"])
        assert all(ti["state"] == "skipped" for t, ti in dry_tasks.items() if t.startswith("case_")), dry_tasks
        rerun = airflow.wait_for_run(forward, airflow.trigger(forward, {"month": months[1]})["dag_run_id"], RUN_TIMEOUT)
        assert rerun["state"] == "success", airflow.explain(forward, rerun["dag_run_id"])
        rerun_report = airflow.xcom(forward, rerun["dag_run_id"], "forward_month")
        assert rerun_report["changed_records"] == 0 and rerun_report["months"] == [months[1]], rerun_report
        assert_matches_model(spark, cfg, raw, source_records(spark, cfg))

    assert airflow.log_errors() == [], "import or trigger-load errors in the services' logs"


def test_ingest_asset_quality_gate_alerts_and_the_pipeline_page(spark, airflow, scenario, webhook, tmp_path):
    """After the scenario above: files ingested by the ingest DAG start the backfill DAG through the source Asset;
    a broken table rule fails the quality gate, and the failure reaches the webhook; the page shows it all."""
    raw, cfg = load(scenario["namespace"], name=NAME, airflow=scenario["raw"]["airflow"])
    last = scenario["monthly"][-1]

    # 1. Ingest a file through Airflow: the Asset event starts a backfill run, without a trigger or a schedule.
    backfill, ingest = f"{NAME}_backfill", f"{NAME}_ingest"
    before = {r["dag_run_id"] for r in airflow.dag_runs(backfill)}
    late = [record(3, "2024-06", 40, bal=306)]  # account 3's month after its newest: Case II
    landing = scenario["landing"] / "late"
    spark.createDataFrame(late, spark.table(cfg.source_table).schema).coalesce(1).write.parquet(str(landing))
    wait_for_dag(airflow, ingest)
    airflow.unpause(ingest)
    airflow.unpause(backfill)  # (the test above did; this one must not depend on how far it got)
    landed_at = time.time()
    ingested = airflow.wait_for_run(ingest, airflow.trigger(ingest, {"path": str(landing)})["dag_run_id"], RUN_TIMEOUT)
    assert ingested["state"] == "success", airflow.explain(ingest, ingested["dag_run_id"])
    assert airflow.xcom(ingest, ingested["dag_run_id"], "ingest")["rows_written"]["source"] == 1
    # Two events may start two runs (the watcher saw the append, the ingest DAG announced it): one applies, the
    # other finds nothing left and ends at its sensor.
    started = _new_runs(airflow, backfill, before, "the Asset event to start a backfill run")
    time.sleep(10)  # two watcher polls: a second run, if any, exists by now
    started = _new_runs(airflow, backfill, before, "the Asset events' runs")
    finished = [airflow.wait_for_run(backfill, run_id, RUN_TIMEOUT) for run_id in started]
    assert all(r["state"] == "success" for r in finished), [airflow.explain(backfill, r["dag_run_id"]) for r in finished]
    applied = [r for r in finished if airflow.task_instances(backfill, r["dag_run_id"])["classify"]["state"] == "success"]
    assert len(applied) == 1, finished
    run = applied[0]
    LATENCIES["a file landed through the ingest DAG (Asset event)"] = seconds_since(landed_at, run["end_date"])
    assert airflow.xcom(backfill, run["dag_run_id"], "classify")["accounts_by_case"] == {"I": 0, "II": 1, "III": 0}
    gate = airflow.xcom(backfill, run["dag_run_id"], "quality_gate")
    assert gate["details"]["violations"] == 0 and gate["details"]["scope"] == {"start_month": "2024-06", "end_month": None}
    # ingesting the same file again appends nothing, so no Asset event and no backfill run
    again = airflow.wait_for_run(ingest, airflow.trigger(ingest, {"path": str(landing)})["dag_run_id"], RUN_TIMEOUT)
    assert airflow.task_instances(ingest, again["dag_run_id"])["source_updated"]["state"] == "skipped"

    # 2. A broken table rule: re-running the month changes nothing, and its quality gate fails naming the rule.
    spark.sql(f"UPDATE {cfg.summary_table} SET rating_grid = 'x' WHERE acct = 3 AND month = '{last}'")
    forward = f"{NAME}_forward"
    rerun = airflow.wait_for_run(forward, airflow.trigger(forward, {"month": last})["dag_run_id"], RUN_TIMEOUT)
    tasks = airflow.task_instances(forward, rerun["dag_run_id"])
    assert rerun["state"] == "failed" and tasks["forward_month"]["state"] == "success", airflow.explain(
        forward, rerun["dag_run_id"]
    )
    assert tasks["quality_gate"]["state"] == "failed"
    failed_gate = airflow.xcom(forward, rerun["dag_run_id"], "quality_gate", key="report")
    assert failed_gate["details"]["checks"]["rating_grid.grid"]["examples"] == [f"3 {last}"], failed_gate
    assert f"rating_grid.grid (1; e.g. 3 {last})" in airflow.task_log(forward, rerun["dag_run_id"], "quality_gate")

    # 3. The failure reached the webhook (the task's on_failure_callback, on the worker).
    alerts = wait_for("the failure alert", lambda: webhook.bodies(task_id="quality_gate"), 60, 1)
    assert alerts[0]["dag_id"] == forward and alerts[0]["run_id"] == rerun["dag_run_id"], alerts
    # the receiver is outside: it gets ids, the log link and the error's type, never its text (record examples)
    assert alerts[0]["error_type"] == "AirflowFailException" and "rating_grid" not in json.dumps(alerts[0]), alerts
    assert {r["path"] for r in webhook.received} == {"/alerts"}

    # 4. The pipeline page, through the api-server, shows the tables' figures and the failed gate.
    plugins = airflow.get("/api/v2/plugins")["plugins"]
    views = [v for p in plugins if p["name"] == "summary_pipeline" for v in p["external_views"]]
    assert any(v["href"].endswith("/summary-pipeline/page") for v in views), plugins
    data = airflow.get(f"/summary-pipeline/page-data/{NAME}")
    assert [r["rule"] for r in data["quality_gate"]["broken_rules"]] == ["rating_grid.grid"], data["quality_gate"]
    cases = [b["accounts_by_case"] for b in data["backfills"] if not b["dry_run"]]
    assert {"I": 1, "II": 1, "III": 1} in cases and cases[-1] == {"I": 0, "II": 1, "III": 0}, data["backfills"]
    assert {m["month"]: m["source_records"] for m in data["months"]}["2024-06"] == 1, data["months"]
    for path in ("/status", f"/status/{NAME}", "/page", f"/page-data/{NAME}"):  # a login is needed ...
        assert airflow.status_without_token(f"/summary-pipeline{path}") == 401, path
    for path in ("/docs", "/redoc", "/openapi.json"):  # ... and FastAPI's API docs, served outside it, are off
        assert airflow.status_without_token(f"/summary-pipeline{path}", airflow.token) == 404, path
    metrics = airflow.get_text("/summary-pipeline/metrics")  # what a Prometheus scrape gets, through the api-server
    assert f'summary_pipeline_up{{config="{NAME}"}} 1' in metrics
    assert f'summary_pipeline_quality_gate_passed{{config="{NAME}"}} 0' in metrics, metrics  # the gate that failed above
    html = airflow.get_text(f"/summary-pipeline/page/{NAME}")
    assert "rating_grid.grid" in html and "<svg" in html and last in html
    page = tmp_path / "pipeline-page.html"
    page.write_text(html)
    print(f"\npipeline page data: {json.dumps(data)[:2000]}")
    if browser() is None:
        pytest.skip("chromium is not installed: the page's screenshot was not taken")
    png = screenshot(page, tmp_path / "pipeline-page.png")
    print(f"pipeline page screenshot (a test artifact): {png}")
    assert sum(colour_counts(png).values()) > 0


def test_a_config_added_to_the_running_airflow_gets_its_pool_and_runs(spark, airflow, scenario):
    """No `airflow pools import` for it: the plugin's listener makes its pool when its first run starts, so its
    stage tasks run instead of waiting in `scheduled`. It shares the source (so it has records to classify)."""
    namespace = scenario["namespace"]
    quiet = {"watch_source": False, "backfill_schedule": None, "maintenance_schedule": None, "retries": 0}
    raw = dict(scenario["raw"], name="added", destination_table=f"local.{namespace}.added_summary",
               latest_history_table=f"local.{namespace}.added_latest", airflow=quiet)  # fmt: skip
    (scenario["configs"] / "added.json").write_text(json.dumps(raw))
    wait_for_dag(airflow, "added_backfill")
    assert all(p["name"] != "summary_added_writers" for p in airflow.get("/api/v2/pools")["pools"])
    airflow.unpause("added_backfill")
    one_account = {"backfill_filter": "acct_id = 1"}  # its first run: account 1 is new to its tables (Case I)
    run = airflow.wait_for_run("added_backfill", airflow.trigger("added_backfill", one_account)["dag_run_id"], RUN_TIMEOUT)
    assert run["state"] == "success", airflow.explain("added_backfill", run["dag_run_id"])
    assert airflow.xcom("added_backfill", run["dag_run_id"], "classify")["accounts_by_case"] == {"I": 1, "II": 0, "III": 0}
    assert airflow.get("/api/v2/pools/summary_added_writers")["slots"] == 1
    assert "Error while calling listener" not in airflow.log("scheduler").read_text(), "the listener broke a scheduler loop"


def _new_runs(airflow, dag_id, before, what):
    """The ids of the runs started since ``before`` (a set of run ids), each started by an Asset event."""
    runs = wait_for(what, lambda: [r for r in airflow.dag_runs(dag_id) if r["dag_run_id"] not in before], 180, 2)
    assert all(r["run_type"] == "asset_triggered" for r in runs), runs
    return [r["dag_run_id"] for r in runs]


def _all_finished(runs, count):
    finished = [r for r in runs if r["state"] in ("success", "failed")]
    if any(r["state"] == "failed" for r in runs):
        return runs  # stop waiting: the assertion names the failure
    return runs if len(finished) >= count else None
