"""The factory's pure pieces: month derivation, branch choice, stage arguments, catalog properties."""

import datetime as dt
import json
from pathlib import Path

import pytest

from spark_jobs.catalogs import pyiceberg_properties
from spark_jobs.config import config_from_dict
from summary_airflow.months import first_scheduled_month, initial_load_months, run_month
from summary_airflow.submit import application_args, cases_to_run, touched_months

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"
UTC = dt.timezone.utc


def test_a_scheduled_run_processes_the_month_its_data_interval_starts_in():
    # CronDataIntervalTimetable("0 0 1 * *"): the run on 2024-03-01 covers February
    assert run_month({}, dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC)) == "2024-02"


def test_a_month_param_wins_and_is_validated():
    assert run_month({"month": "2023-11"}, dt.datetime(2024, 2, 1, tzinfo=UTC), None) == "2023-11"
    with pytest.raises(ValueError, match="'2023-13' is not a YYYY-MM month"):
        run_month({"month": "2023-13"}, None, None)


def test_a_manual_run_without_logical_date_processes_the_month_before_it_runs():
    assert run_month({"month": None}, None, dt.datetime(2025, 1, 17, 9, tzinfo=UTC)) == "2024-12"


def test_initial_load_months_and_first_scheduled_month():
    raw = json.loads(EXAMPLE.read_text())
    raw["airflow"] = {"initial_load": {"start_month": "2023-11", "end_month": "2024-02"}}
    cfg = config_from_dict(raw)
    assert initial_load_months(cfg) == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert first_scheduled_month(cfg) == "2024-03"
    raw["airflow"]["start_month"] = "2024-06"
    assert first_scheduled_month(config_from_dict(raw)) == "2024-06"


@pytest.mark.parametrize(
    "report, expected",
    [
        ({"accounts_by_case": {"I": 3, "II": 0, "III": 1}}, ["case_i", "case_iii"]),
        ({"accounts_by_case": {"I": 0, "II": 0, "III": 0}}, []),
        ({"accounts_by_case": {"I": 0, "II": 5, "III": 0}, "dry_run": True}, []),
        (None, []),
    ],
)
def test_the_branch_follows_only_cases_with_accounts(report, expected):
    assert cases_to_run(report) == expected


def test_stage_arguments_are_the_v4_command_line():
    assert application_args("c.json", "forward", "/r.json", start_month="2024-02") == [
        "--config", "c.json", "--mode", "forward", "--report-file", "/r.json",
        "--start-month", "2024-02", "--end-month", "2024-02",
    ]  # fmt: skip
    args = application_args("c.json", "classify", "/r.json", backfill_filter="cons_acct_key = 1", dry_run=True)
    assert args[-2:] == ["--backfill-filter=cons_acct_key = 1", "--dry-run"]
    assert application_args("c.json", "case-iii", "/r.json", run_id="classify-1")[-2:] == ["--run-id", "classify-1"]
    with pytest.raises(ValueError, match="unknown stage 'case-iv'"):
        application_args("c.json", "case-iv", "/r.json")
    assert application_args("c.json", "check", "/r.json", start_month="2024-02", through_newest=True)[-2:] == [
        "--start-month", "2024-02",
    ]  # fmt: skip
    assert application_args("c.json", "ingest", "/r.json", paths=["/landing/*.parquet", "/b"])[-2:] == [
        "--path=/landing/*.parquet", "--path=/b",
    ]  # fmt: skip


def test_the_quality_gate_checks_the_months_the_run_applied():
    assert touched_months([{"months": ["2024-03", "2024-01"]}, None, {"months": ["2024-02"]}]) == ("2024-01", "2024-03")
    assert touched_months([None, {"months": []}]) == (None, None)
    assert touched_months([{"months": ["2024-01"], "dry_run": True}]) == (None, None)  # a dry run applied nothing


def test_the_sensor_reads_the_same_catalog_as_the_jobs():
    cfg = config_from_dict(json.loads(EXAMPLE.read_text()))
    props = pyiceberg_properties(cfg, "/data/wh", "local")
    assert props == {"type": "sql", "uri": "sqlite:////data/wh/iceberg_catalog.sqlite", "warehouse": "file:///data/wh/local"}
    raw = json.loads(EXAMPLE.read_text())
    raw["catalog"] = {"catalogs": {"local": {"type": "rest", "uri": "http://rest:8181", "warehouse": "s3://lake/wh"}}}
    assert pyiceberg_properties(config_from_dict(raw), "/ignored", "local") == {
        "type": "rest", "uri": "http://rest:8181", "warehouse": "s3://lake/wh",
    }  # fmt: skip


def _with_catalog(catalog):
    raw = json.loads(EXAMPLE.read_text())
    raw["catalog"] = {"catalogs": {"local": catalog}}
    return config_from_dict(raw)


def test_a_postgresql_jdbc_catalog_is_read_through_sqlalchemy_with_its_credentials():
    jdbc = {"type": "jdbc", "uri": "jdbc:postgresql://db.internal:5432/iceberg?sslmode=require", "warehouse": "s3://lake/wh",
            "jdbc.user": "summary", "jdbc.password": "p@ss:w/rd?"}  # fmt: skip
    assert pyiceberg_properties(_with_catalog(jdbc), "/ignored", "local") == {
        "type": "sql",
        "uri": "postgresql+psycopg2://summary:p%40ss%3Aw%2Frd%3F@db.internal:5432/iceberg?sslmode=require",
        "warehouse": "s3://lake/wh",
    }
    in_url = {"type": "jdbc", "uri": "jdbc:postgresql://db:5432/iceberg?user=u&password=pw", "warehouse": "/wh"}
    assert pyiceberg_properties(_with_catalog(in_url), "/ignored", "local")["uri"] == "postgresql+psycopg2://u:pw@db:5432/iceberg"


def test_spark_catalog_impl_classes_become_pyiceberg_types():
    glue = {"catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog", "warehouse": "s3://lake/wh", "glue.id": "123"}
    assert pyiceberg_properties(_with_catalog(glue), "/ignored", "local") == {
        "type": "glue", "warehouse": "s3://lake/wh", "glue.id": "123",
    }  # fmt: skip
    hive = {"type": "hive", "uri": "thrift://metastore:9083", "warehouse": "s3://lake/wh"}
    assert pyiceberg_properties(_with_catalog(hive), "/ignored", "local")["type"] == "hive"


@pytest.mark.parametrize(
    ("catalog", "named"),
    [
        ({"type": "hadoop", "warehouse": "/wh"}, "type hadoop"),
        (
            {"catalog-impl": "org.apache.iceberg.nessie.NessieCatalog", "uri": "http://nessie"},
            "catalog-impl org.apache.iceberg.nessie",
        ),
        ({"type": "jdbc", "uri": "jdbc:mysql://db/iceberg?password=secret", "warehouse": "/wh"}, "jdbc:mysql://db/iceberg"),
    ],
)
def test_a_catalog_pyiceberg_cannot_read_is_named_and_refused_when_the_dags_are_parsed(catalog, named, tmp_path):
    from spark_jobs.catalogs import pyiceberg_problems
    from summary_airflow.factory import build_dags

    [problem] = pyiceberg_problems(_with_catalog(catalog))
    assert problem.startswith("catalog local: ") and named in problem and "secret" not in problem, problem
    raw = json.loads(EXAMPLE.read_text())
    raw["catalog"] = {"catalogs": {"local": catalog}}
    (tmp_path / "unreadable.json").write_text(json.dumps(raw))
    dags, errors = build_dags(tmp_path)
    assert dags == {} and [e.problems for e in errors] == [[problem]]


def test_configs_sharing_a_source_give_every_use_of_its_asset_the_same_watchers(tmp_path):
    """Airflow keeps the definition of an Asset it met last: each must carry the watchers of all who watch it."""
    from summary_airflow.factory import build_dags

    raw = json.loads(EXAMPLE.read_text())
    watched = dict(raw, name="watched")
    unwatched = dict(raw, name="unwatched", destination_table="local.db.other", latest_history_table="local.db.other_l",
                     airflow={"watch_source": False})  # fmt: skip
    for name, config in (("watched", watched), ("unwatched", unwatched)):
        (tmp_path / f"{name}.json").write_text(json.dumps(config))
    dags, errors = build_dags(tmp_path)
    assert errors == ()
    uses = [dags[f"{n}_backfill"].timetable.asset_condition for n in ("watched", "unwatched")]
    uses += [a for n in ("watched", "unwatched") for a in dags[f"{n}_ingest"].get_task("source_updated").outlets]
    assert {a.uri for a in uses} == {"iceberg://local/db/accounts_all"}
    assert [[w.name for w in a.watchers] for a in uses] == [["watched_source_snapshots"]] * 4
    assert dags["unwatched_backfill"].get_task("wait_for_new_records").wait is True  # its own runs still wait


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        ("TRIGGER_TIMEOUT", "AirflowSkipException"),  # nothing new in time: skip the run, quietly
        ("TRIGGER_FAILURE", "TaskDeferralError"),  # the trigger could not load or run: fail, loudly
    ],
)
def test_the_sensor_skips_only_when_nothing_arrived_in_time(error, outcome):
    from airflow.sdk.bases.operator import TriggerFailureReason
    from airflow.sdk.exceptions import AirflowSkipException, TaskDeferralError

    from summary_airflow.source_watch import NewSourceRecordsSensor

    sensor = NewSourceRecordsSensor(task_id="wait", config_path=EXAMPLE, timeout=60)
    with pytest.raises((AirflowSkipException, TaskDeferralError)) as raised:
        sensor.resume_execution("__fail__", {"error": getattr(TriggerFailureReason, error)}, {})
    assert type(raised.value).__name__ == outcome


@pytest.mark.parametrize("wait", [False, True])
def test_with_nothing_to_apply_the_sensor_skips_at_once_or_defers(wait, tmp_path, monkeypatch):
    """The watcher starts runs when records arrive (wait off): a run with nothing to apply ends there."""
    from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

    from summary_airflow.source_watch import NewSourceRecordsSensor, NewSourceRecordsTrigger

    monkeypatch.setenv("SUMMARY_WAREHOUSE", str(tmp_path))  # an empty warehouse: no source records at all
    sensor = NewSourceRecordsSensor(task_id="wait", config_path=EXAMPLE, wait=wait, timeout=60)
    with pytest.raises((AirflowSkipException, TaskDeferred)) as raised:
        sensor.execute({"params": {}})
    if wait:
        assert isinstance(raised.value, TaskDeferred) and isinstance(raised.value.trigger, NewSourceRecordsTrigger)
    else:
        assert isinstance(raised.value, AirflowSkipException) and "watcher" in str(raised.value)


def test_the_initial_load_question_works_without_a_data_interval():
    """A run triggered from the UI or the REST API has no logical date: its context has no data_interval_start."""
    from types import SimpleNamespace

    from summary_airflow.factory import _initial_load_needed

    manual = SimpleNamespace(run_after=dt.datetime(2024, 4, 9, tzinfo=UTC))
    assert _initial_load_needed(params={}, dag_run=manual, first_month="2024-03") is True
    assert _initial_load_needed(params={"month": "2024-05"}, dag_run=manual, first_month="2024-03") is False
    assert _initial_load_needed(params={"month": "2024-05", "initial_load": True}, dag_run=manual, first_month="2024-03")


def test_report_files_are_one_per_task_try_of_each_run_and_parse_back():
    from summary_airflow.settings import parse_report_file_name, report_file_name

    name = report_file_name("cards_forward", "initial_load.forward_2024_01", "scheduled__2024-08-01T00:00:00+00:00", 2)
    assert name == "cards_forward.initial_load.forward_2024_01.scheduled__2024-08-01T00_00_00_00_00.2.json"
    assert parse_report_file_name(name) == (
        "cards_forward",
        "initial_load.forward_2024_01",
        "scheduled__2024-08-01T00_00_00_00_00",
        2,
    )
    other_run = report_file_name("cards_forward", "initial_load.forward_2024_01", "manual__2024-08-01T00:00:00+00:00", 2)
    assert other_run != name  # a second run of the task must not overwrite the first run's report
    assert parse_report_file_name("cards_forward.forward_month.1.json") is None  # not one of ours
    assert parse_report_file_name("notes.txt") is None


def test_the_status_names_the_operations_of_the_snapshots_since_the_mark(tmp_path):
    """What the status API reports for a source written by appends, an overwrite and a delete (PyIceberg's own
    writers, read back from the table's metadata)."""
    import pyarrow as pa
    from pyiceberg.expressions import EqualTo

    from summary_airflow.metadata import operations_since
    from tests.airflow.test_pipeline_page import _catalog, _month_table

    catalog = _catalog(tmp_path)
    catalog.create_namespace("ns")
    table = _month_table(catalog, "ns.source", [{"2024-01": 2}])
    mark = str(table.current_snapshot().snapshot_id)
    assert operations_since(table, mark) == {}
    table.append(pa.table({"cons_acct_key": pa.array([7], pa.int64()), "rpt_as_of_mo": ["2024-02"]}))
    assert operations_since(table, mark) == {"append": 1}
    table.overwrite(pa.table({"cons_acct_key": pa.array([1], pa.int64()), "rpt_as_of_mo": ["2024-01"]}))
    table.delete(EqualTo("cons_acct_key", 1))
    operations = operations_since(catalog.load_table("ns.source"), mark)
    assert operations["append"] >= 1 and operations.get("overwrite", 0) + operations.get("delete", 0) >= 2, operations
    assert operations_since(table, "12345") is None, "a mark the walk cannot reach: the whole source is read"
    assert operations_since(table, None) is None
