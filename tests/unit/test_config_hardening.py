"""Configs that would hand the job to their author, or make it wipe a table: refused at load, naming the key.

Every case here passed validation before (and then collided, took over the
session or broke every DAG of the folder); each is also a bad-input case of
the fault tier.
"""

import json
from pathlib import Path

import pytest

from spark_jobs.catalogs import same_table_problems, table_key
from spark_jobs.config import ConfigError, config_from_dict, load_config
from spark_jobs.config_set import load_all

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"


@pytest.fixture
def raw():
    return json.loads(EXAMPLE.read_text())


def problems(raw_config, tmp_path, name="bad_config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(raw_config))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def conf(key):
    return lambda raw: raw["spark_config"].update(conf={key: "x"})


def airflow(**settings):
    return lambda raw: raw.setdefault("airflow", {}).update(settings)


@pytest.mark.faults
@pytest.mark.parametrize(
    "change, expected",
    [
        # derived tables: the pipeline DELETEs from <destination>_backfill and _staging, MERGEs into _rejects, locks _control
        (lambda r: r.update(source_table="local.db.summary_backfill"), "source_table: 'local.db.summary_backfill' is a name"),
        (lambda r: r.update(latest_history_table=r["destination_table"] + "_staging"), "latest_history_table: "),
        (lambda r: r.update(source_table="db.summary_control"), "source_table: 'db.summary_control' is a name the pipeline"),
        # one table under two names: the real default catalog, and case
        (lambda r: r.update(latest_history_table="db.summary"), "must name three different tables"),
        (lambda r: r.update(latest_history_table="LOCAL.DB.Summary"), "must name three different tables"),
        (
            lambda r: r.update(catalog={"default": "prod"}, latest_history_table="prod.db.x", destination_table="db.x"),
            "must name three different tables",
        ),
        # Spark conf that would take over the session
        (conf("spark.sql.session.timeZone"), "spark_config.conf.spark.sql.session.timeZone: not a setting a config may"),
        (conf("spark.sql.catalog.local.uri"), "spark_config.conf.spark.sql.catalog.local.uri: not a setting"),
        (conf("spark.driver.extraJavaOptions"), "spark_config.conf.spark.driver.extraJavaOptions: not a setting"),
        (conf("spark.sql.extensions"), "spark_config.conf.spark.sql.extensions: not a setting"),
        (conf("spark.jars"), "spark_config.conf.spark.jars: not a setting"),
        (conf("spark.hadoop.fs.s3a.endpoint"), "spark_config.conf.spark.hadoop.fs.s3a.endpoint: not a setting"),
        # what made DAG() raise for the whole folder
        (lambda r: r.update(name="n" * 201), "name: "),
        (airflow(tags=["t" * 101]), "airflow.tags[0]: "),
        (airflow(start_month="0000-01"), "airflow.start_month: '0000-01' is not a YYYY-MM month of the years 1900-2999"),
        (airflow(initial_load={"start_month": "1900-01", "end_month": "2099-12"}), "airflow.initial_load: more than 360 months"),
        # a line break after a name or month: Python's '$' accepts it, ECMA's does not
        (lambda r: r.update(destination_table="local.db.summary\n"), "destination_table: 'local.db.summary\\n' is not a table"),
        (airflow(start_month="2024-02\n"), "airflow.start_month: '2024-02\\n' is not a YYYY-MM"),
        (airflow(backfill_schedule="@once"), "airflow.backfill_schedule: '@once' is not a repeating schedule"),
        # alerts that could never be delivered
        (airflow(alerts={"webhook": {"url": "ftp://hooks.example/x"}}), "airflow.alerts.webhook.url: "),
        (airflow(alerts={"webhook": {"url": "https://h.example/x", "url_env": "HOOK"}}), "airflow.alerts.webhook: "),
        (airflow(alerts={"webhook": {}}), "airflow.alerts.webhook: "),
        (airflow(alerts={"email": {"to": ["not-an-address"]}}), "airflow.alerts.email.to[0]: "),
        (airflow(alerts={"forward_deadline_day": 5}), "airflow.alerts.forward_deadline_day: nobody to tell"),
        (airflow(alerts={"forward_deadline_day": 31, "email": {"to": ["a@b.example"]}}), "airflow.alerts.forward_deadline_day: "),
    ],
)
def test_dangerous_configs_are_refused_naming_the_key(raw, tmp_path, change, expected, tally):
    raw.setdefault("spark_config", {})
    change(raw)
    assert expected in problems(raw, tmp_path)
    tally.add("bad input: config (hardening)")


def test_tuning_conf_is_still_allowed(raw):
    raw.setdefault("spark_config", {})["conf"] = {
        "spark.sql.shuffle.partitions": 64,
        "spark.executor.memory": "8g",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "128m",
        "spark.sql.ansi.enabled": True,
    }
    assert config_from_dict(raw).spark.conf["spark.executor.memory"] == "8g"


def test_catalogs_that_are_one_catalog_make_one_table(raw, monkeypatch):
    """$SUMMARY_CATALOGS may point two catalog names at one REST catalog: their tables are then the same."""
    raw.update(source_table="a.db.accounts", destination_table="a.db.summary", latest_history_table="b.db.summary")
    cfg = config_from_dict(raw)
    assert same_table_problems(cfg) == []
    rest = {"type": "rest", "uri": "http://catalog:8181", "warehouse": "s3://w/"}
    monkeypatch.setenv("SUMMARY_CATALOGS", json.dumps({"a": rest, "b": {**rest, "token": "other credentials, same catalog"}}))
    assert table_key(cfg, "a.db.summary") == table_key(cfg, "B.DB.SUMMARY")
    assert same_table_problems(cfg) == [
        "latest_history_table 'b.db.summary' is the same table as destination_table 'a.db.summary' "
        "(catalogs resolved with $SUMMARY_CATALOGS)"
    ]


def write(folder, name, raw):
    (folder / name).write_text(json.dumps(raw))


def test_configs_of_one_folder_may_not_share_a_written_table(raw, tmp_path, tally):
    first = dict(raw, name="cards")
    write(tmp_path, "a_cards.json", first)
    # another config whose source is the first one's backfill table: classify would DELETE ... WHERE true from it
    write(tmp_path, "b_thief.json", dict(raw, name="thief", source_table="db.summary_backfill", destination_table="db.other",
                                         latest_history_table="db.other_latest"))  # fmt: skip
    # another config writing the first one's latest table under its two-part name
    write(tmp_path, "c_twin.json", dict(raw, name="twin", destination_table="db.twin", latest_history_table="db.latest_summary"))
    # sharing a source table is fine: both only read it
    write(tmp_path, "d_sibling.json", dict(raw, name="sibling", destination_table="db.sib", latest_history_table="db.sib_l"))
    loaded = load_all(tmp_path)
    # both sides of each clash are refused (not first-wins); the sibling, only sharing the source, is loaded
    assert [c.name for c in loaded.configs] == ["sibling"]
    errors = {Path(e.path).name: e.problems for e in loaded.errors}
    first, thief, twin = (tmp_path / n for n in ("a_cards.json", "b_thief.json", "c_twin.json"))
    refused = "one table, one owner, so none of these configs is loaded"
    assert errors["b_thief.json"] == [
        f"source_table: the same table as the derived table local.db.summary_backfill of {first}; {refused}"
    ]
    assert errors["c_twin.json"] == [f"latest_history_table: the same table as the latest_history_table of {first}; {refused}"]
    assert sorted(errors["a_cards.json"]) == sorted([
        f"derived table local.db.summary_backfill: the same table as the source_table of {thief}; {refused}",
        f"latest_history_table: the same table as the latest_history_table of {twin}; {refused}",
    ])  # fmt: skip
    tally.add("bad input: config (hardening)", 3)
