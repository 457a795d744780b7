"""Every config's DAGs load from dags/, with the expected tasks, dependencies, schedules and params."""

import datetime as dt
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "configs" / "airflow"
BAD = ROOT / "tests" / "fixtures" / "configs" / "airflow_bad"


def dagbag(configs_dir, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SUMMARY_CONFIGS_DIR", str(configs_dir))
    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def bag(monkeypatch):
    return dagbag(GOOD, monkeypatch)


def downstream(dag, task_id):
    return sorted(dag.get_task(task_id).downstream_task_ids)


KINDS = ("backfill", "forward", "ingest", "maintenance")


def test_every_config_gets_four_dags_and_no_import_error(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [f"{name}_{kind}" for name in ("cards", "mortgages") for kind in KINDS]


def test_dags_have_no_cycles_and_are_documented(bag):
    from airflow.utils.dag_cycle_tester import check_cycle

    for dag in bag.dags.values():
        check_cycle(dag)
        assert dag.doc_md and "summary-pipeline" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.doc_md, f"{dag.dag_id}.{task.task_id} has no doc_md"


def test_forward_is_monthly_on_data_intervals_in_order_with_the_initial_load_chained(bag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = bag.dags["cards_forward"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable) and dag.timetable.expression == "0 0 1 * *"
    assert dag.catchup is True and dag.max_active_runs == 1
    assert dag.start_date == dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    initial = [f"initial_load.forward_2024_0{m}" for m in range(1, 7)]
    assert downstream(dag, "initial_load_needed") == [initial[0]]
    for earlier, later in zip(initial, initial[1:], strict=False):
        assert downstream(dag, earlier) == [later]
    assert downstream(dag, initial[-1]) == ["forward_month"]
    assert downstream(dag, "forward_month") == ["quality_gate"]
    assert downstream(dag, "quality_gate") == ["maintenance_due"]
    assert downstream(dag, "maintenance_due") == ["trigger_maintenance"]
    forward = dag.get_task("forward_month")
    assert forward.depends_on_past is True and forward.pool == "summary_cards_writers"
    assert forward.retries == 2 and forward.retry_exponential_backoff
    assert forward.trigger_rule == "none_failed"
    assert forward.wait_for_downstream is True  # a month waits for the previous month's quality gate
    gate = dag.get_task("quality_gate")
    assert gate.stage == "check" and gate.months == "touched" and gate.through_newest is True
    assert gate.touched_from == ("forward_month", *initial)
    assert set(dag.params.keys()) == {"month", "initial_load"}
    assert dag.get_task("initial_load.forward_2024_03").months == ("2024-03", "2024-03")


def test_a_config_without_initial_load_has_only_the_monthly_task(bag):
    dag = bag.dags["mortgages_forward"]
    assert sorted(t.task_id for t in dag.tasks) == ["forward_month", "maintenance_due", "quality_gate", "trigger_maintenance"]


def test_backfill_waits_classifies_and_branches_to_serialised_cases(bag):
    from airflow.sdk import AssetOrTimeSchedule

    dag = bag.dags["cards_backfill"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule) and dag.catchup is False and dag.max_active_runs == 1
    assert dag.timetable.timetable.expression == "*/30 * * * *"
    assert dag.timetable.asset_condition.uri == "iceberg://local/cards/accounts_all"
    assert downstream(dag, "wait_for_new_records") == ["classify"]
    assert downstream(dag, "classify") == ["choose_cases"]
    assert downstream(dag, "choose_cases") == ["backfill_report", "case_i", "case_ii", "case_iii"]
    assert downstream(dag, "case_i") == ["case_ii"] and downstream(dag, "case_ii") == ["case_iii"]
    assert downstream(dag, "case_iii") == ["backfill_report"]
    assert downstream(dag, "backfill_report") == ["quality_gate"]
    gate = dag.get_task("quality_gate")
    assert gate.stage == "check" and gate.through_newest is True and gate.touched_from == ("case_i", "case_ii", "case_iii")
    sensor = dag.get_task("wait_for_new_records")
    assert sensor.deferrable is True and sensor.soft_fail is False  # see test_plugin_logic: only a timeout skips
    assert [dag.get_task(f"case_{c}").stage for c in ("i", "ii", "iii")] == ["case-i", "case-ii", "case-iii"]
    assert {dag.get_task(t).pool for t in ("classify", "case_i", "case_iii")} == {"summary_cards_writers"}
    assert [dag.get_task(t).name for t in ("classify", "case_iii")] == ["summary-cards-classify", "summary-cards-case-iii"]
    # spark_config.conf's driver memory takes effect only on spark-submit's command line; the rest the job sets
    assert {dag.get_task(t).conf["spark.driver.memory"] for t in ("classify", "case_i", "quality_gate")} == {"3g"}
    assert "spark.sql.shuffle.partitions" not in dag.get_task("classify").conf
    assert set(dag.params.keys()) == {"backfill_filter", "dry_run", "start_month", "end_month"}
    assert dag.params.get_param("start_month").schema["pattern"].startswith("^[0-9]{4}")
    assert dag.params.get_param("start_month").schema["maxLength"] == 7, "'2024-02\\n' must not pass the pattern's $"
    assert dag.params.get_param("backfill_filter").schema["maxLength"] == 1000


def test_the_source_asset_is_watched_unless_the_config_turns_it_off(bag):
    """Every use of the source Asset carries its watcher (Airflow keeps the definition it met last)."""
    from airflow.serialization.serialized_objects import DagSerialization

    cards = bag.dags["cards_backfill"]
    uses = [cards.timetable.asset_condition, *bag.dags["cards_ingest"].get_task("source_updated").outlets]
    for asset in uses:
        [watcher] = asset.watchers
        assert watcher.name == "cards_source_snapshots"
        classpath, kwargs = watcher.trigger.serialize()
        assert classpath == "summary_airflow.source_watch.SourceSnapshotWatcher"
        assert kwargs == {"config_path": str(GOOD / "cards.json"), "poke_seconds": 60}
    assert cards.get_task("wait_for_new_records").wait is False  # the watcher starts runs: a run never waits
    stored = DagSerialization.from_dict(DagSerialization.to_dict(cards))  # what the scheduler and triggerer read
    assert [w.trigger["classpath"] for w in stored.timetable.asset_condition.watchers] == [classpath]
    mortgages = bag.dags["mortgages_backfill"]  # airflow.watch_source: false
    assert mortgages.timetable.asset_condition.watchers == []
    assert mortgages.get_task("wait_for_new_records").wait is True


def test_ingest_appends_then_announces_the_source_asset_only_when_records_arrived(bag):
    dag = bag.dags["cards_ingest"]
    assert dag.schedule is None  # manual runs (with a path) or triggered from outside
    assert downstream(dag, "ingest") == ["records_arrived"] and downstream(dag, "records_arrived") == ["source_updated"]
    assert [a.uri for a in dag.get_task("source_updated").outlets] == ["iceberg://local/cards/accounts_all"]
    assert dag.get_task("ingest").outlets == []  # an ingest that skipped every file must not start a backfill
    assert dag.params.get_param("path").value == "/data/landing/cards"
    assert bag.dags["mortgages_ingest"].params.get_param("path").value is None


def test_a_param_that_looks_like_an_option_is_refused_at_trigger_time(bag):
    """Airflow's own Param validation (what a trigger from the UI, the API or the CLI runs) refuses it."""
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    for dag_id, name, good in (("cards_ingest", "path", "/data/landing/cards/2024-07"),
                               ("cards_backfill", "backfill_filter", "cons_acct_key = 42")):  # fmt: skip
        param = bag.dags[dag_id].params.get_param(name)
        for option in ("--mode=maintenance", "--config=/tmp/evil.json", "-x"):
            with pytest.raises(ParamValidationError):
                param.resolve(option)
        assert param.resolve(good) == good
        params = ParamsDict({name: param})
        with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}: '--dry-run' does not match"):
            params[name] = "--dry-run"  # what a trigger's conf does
        assert params.validate()[name] == param.value
    description = bag.dags["cards_ingest"].params.get_param("path").description
    assert "must lie under airflow.landing_dir (/data/landing/cards)" in description
    assert "not set: set it in the config" in bag.dags["mortgages_ingest"].params.get_param("path").description


def test_alerts_reach_every_task_and_the_forward_run_has_its_deadline(bag):
    import datetime as dt

    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from summary_airflow.alerts import WebhookNotifier

    for kind in KINDS:
        for task in bag.dags[f"cards_{kind}"].tasks:
            kinds = sorted(type(n).__name__ for n in task.on_failure_callback)
            assert kinds == ["SmtpNotifier", "WebhookNotifier"], f"cards_{kind}.{task.task_id}"
    webhook, email = sorted(
        bag.dags["cards_forward"].get_task("forward_month").on_failure_callback, key=lambda n: type(n).__name__
    )[::-1]
    assert isinstance(webhook, WebhookNotifier) and webhook.alerts.webhook_url_env == "SUMMARY_ALERT_CARDS_WEBHOOK"
    assert isinstance(email, SmtpNotifier) and email.to == ["risk-data@example.com"] and email.smtp_conn_id == "smtp_cards"
    deadline = bag.dags["cards_forward"].deadline
    deadline = deadline[0] if isinstance(deadline, list) else deadline
    assert deadline.interval == dt.timedelta(days=5)
    assert deadline.callback.path == "summary_airflow.alerts.deadline_missed"
    # no URL in the serialized DAG: the triggerer reads the config (and its URL variable) when the deadline passes
    assert set(deadline.callback.kwargs) == {"config_name", "deadline_day", "config_path"}
    assert deadline.callback.kwargs["config_path"].endswith("cards.json")
    assert not bag.dags["mortgages_forward"].get_task("forward_month").on_failure_callback
    assert not bag.dags["mortgages_forward"].deadline


def test_maintenance_runs_on_its_schedule(bag):
    assert bag.dags["cards_maintenance"].schedule == "@daily"
    assert bag.dags["mortgages_maintenance"].schedule == "@weekly"
    assert bag.dags["cards_maintenance"].get_task("maintenance").stage == "maintenance"


def test_a_bad_config_is_an_import_error_naming_file_and_key_and_the_others_still_load(monkeypatch):
    bag = dagbag(BAD, monkeypatch)
    errors = {Path(path).name: text for path, text in bag.import_errors.items()}
    assert list(errors) == ["summary_config_errors.py"]
    assert (
        f"{BAD / 'broken.json'}: rolling_columns[1].type: unsupported rolling column type 'Float'"
        in errors["summary_config_errors.py"]
    )
    assert sorted(bag.dag_ids) == [f"mortgages_{kind}" for kind in KINDS]


@pytest.mark.faults
def test_a_config_airflow_cannot_build_is_reported_and_the_others_still_load(monkeypatch, tmp_path, tally):
    """A schedule Airflow cannot parse used to make DAG() raise for the whole file: every config's DAGs were gone."""
    import json
    import shutil

    shutil.copy(GOOD / "mortgages.json", tmp_path / "mortgages.json")
    raw = json.loads((GOOD / "cards.json").read_text())
    raw["airflow"]["backfill_schedule"] = "every second tuesday"
    (tmp_path / "cards.json").write_text(json.dumps(raw))
    bag = dagbag(tmp_path, monkeypatch)
    errors = {Path(path).name: text for path, text in bag.import_errors.items()}
    assert list(errors) == ["summary_config_errors.py"]
    assert f"{tmp_path / 'cards.json'}: its backfill DAG cannot be built:" in errors["summary_config_errors.py"]
    assert "every second tuesday" in errors["summary_config_errors.py"]
    assert sorted(bag.dag_ids) == [f"mortgages_{kind}" for kind in KINDS]
    tally.add("bad input: config (hardening)")


def test_the_shipped_configs_load(monkeypatch):
    monkeypatch.delenv("SUMMARY_CONFIGS_DIR", raising=False)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {} and "summary_forward" in bag.dag_ids
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_airflow_dags_list_in_the_project_environment_shows_four_dags_per_config(tmp_path):
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path / "home"), SUMMARY_CONFIGS_DIR=str(GOOD), SUMMARY_WAREHOUSE=str(tmp_path / "wh"))
    listed = subprocess.run(
        [str(ROOT / "bin" / "airflow"), "dags", "list", "-o", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    table = next(line for line in listed.stdout.splitlines() if line.startswith("[{"))
    dag_ids = sorted(d["dag_id"] for d in json.loads(table))
    assert dag_ids == sorted(f"{n}_{k}" for n in ("cards", "mortgages") for k in KINDS)
    errors = subprocess.run(
        [str(ROOT / "bin" / "airflow"), "dags", "list-import-errors", "-o", "json"], env=env, capture_output=True, text=True
    )
    assert errors.returncode == 0 and "summary_config_errors" not in errors.stdout


def test_quick_start_in_a_config_reaches_every_stage_task_of_its_dags_only(monkeypatch, tmp_path):
    import json
    import shutil

    from summary_airflow.operators import SummaryStageOperator

    shutil.copy(GOOD / "mortgages.json", tmp_path / "mortgages.json")
    raw = json.loads((GOOD / "cards.json").read_text())
    raw["spark_config"]["quick_start"] = True
    (tmp_path / "cards.json").write_text(json.dumps(raw))
    bag = dagbag(tmp_path, monkeypatch)
    assert bag.import_errors == {}
    stages = {dag_id: [t for t in dag.tasks if isinstance(t, SummaryStageOperator)] for dag_id, dag in bag.dags.items()}
    assert all(stages[f"cards_{kind}"] for kind in ("backfill", "forward", "maintenance"))
    for dag_id, tasks in stages.items():
        assert {t.quick_start for t in tasks} <= {dag_id.startswith("cards_")}, dag_id
