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


def test_every_config_gets_three_dags_and_no_import_error(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "cards_backfill", "cards_forward", "cards_maintenance",
        "mortgages_backfill", "mortgages_forward", "mortgages_maintenance",
    ]  # fmt: skip


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
    assert downstream(dag, "forward_month") == ["maintenance_due"]
    assert downstream(dag, "maintenance_due") == ["trigger_maintenance"]
    forward = dag.get_task("forward_month")
    assert forward.depends_on_past is True and forward.pool == "summary_cards_writers"
    assert forward.retries == 2 and forward.retry_exponential_backoff
    assert forward.trigger_rule == "none_failed"
    assert set(dag.params.keys()) == {"month", "initial_load"}
    assert dag.get_task("initial_load.forward_2024_03").months == ("2024-03", "2024-03")


def test_a_config_without_initial_load_has_only_the_monthly_task(bag):
    dag = bag.dags["mortgages_forward"]
    assert sorted(t.task_id for t in dag.tasks) == ["forward_month", "maintenance_due", "trigger_maintenance"]


def test_backfill_waits_classifies_and_branches_to_serialised_cases(bag):
    dag = bag.dags["cards_backfill"]
    assert dag.schedule == "*/30 * * * *" and dag.catchup is False and dag.max_active_runs == 1
    assert downstream(dag, "wait_for_new_records") == ["classify"]
    assert downstream(dag, "classify") == ["choose_cases"]
    assert downstream(dag, "choose_cases") == ["backfill_report", "case_i", "case_ii", "case_iii"]
    assert downstream(dag, "case_i") == ["case_ii"] and downstream(dag, "case_ii") == ["case_iii"]
    assert downstream(dag, "case_iii") == ["backfill_report"]
    sensor = dag.get_task("wait_for_new_records")
    assert sensor.deferrable is True and sensor.soft_fail is False  # see test_plugin_logic: only a timeout skips
    assert [dag.get_task(f"case_{c}").stage for c in ("i", "ii", "iii")] == ["case-i", "case-ii", "case-iii"]
    assert {dag.get_task(t).pool for t in ("classify", "case_i", "case_iii")} == {"summary_cards_writers"}
    assert set(dag.params.keys()) == {"backfill_filter", "dry_run", "start_month", "end_month"}
    assert dag.params.get_param("start_month").schema["pattern"].startswith("^[0-9]{4}")
    assert dag.params.get_param("start_month").schema["maxLength"] == 7, "'2024-02\\n' must not pass the pattern's $"
    assert dag.params.get_param("backfill_filter").schema["maxLength"] == 1000


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
    assert sorted(bag.dag_ids) == ["mortgages_backfill", "mortgages_forward", "mortgages_maintenance"]


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
    assert sorted(bag.dag_ids) == ["mortgages_backfill", "mortgages_forward", "mortgages_maintenance"]
    tally.add("bad input: config (hardening)")


def test_the_shipped_configs_load(monkeypatch):
    monkeypatch.delenv("SUMMARY_CONFIGS_DIR", raising=False)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {} and "summary_forward" in bag.dag_ids
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_airflow_dags_list_in_the_project_environment_shows_three_dags_per_config(tmp_path):
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
    assert dag_ids == sorted(f"{n}_{k}" for n in ("cards", "mortgages") for k in ("forward", "backfill", "maintenance"))
    errors = subprocess.run(
        [str(ROOT / "bin" / "airflow"), "dags", "list-import-errors", "-o", "json"], env=env, capture_output=True, text=True
    )
    assert errors.returncode == 0 and "summary_config_errors" not in errors.stdout
