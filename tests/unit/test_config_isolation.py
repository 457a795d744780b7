"""One config file cannot hurt another: each file is read in its own error boundary, and clashing configs are all refused."""

import json
from pathlib import Path

import pytest

from spark_jobs.config import ConfigError, load_config
from spark_jobs.config_set import load_all

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"


@pytest.fixture
def raw():
    return json.loads(EXAMPLE.read_text())


def test_a_latin1_a_deeply_nested_and_a_huge_file_are_each_their_own_error(raw, tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(dict(raw, name="good")))
    (tmp_path / "latin1.json").write_bytes(json.dumps({"name": "café"}, ensure_ascii=False).encode("latin-1"))
    (tmp_path / "deep.json").write_text("[" * 100000)
    (tmp_path / "huge.json").write_text(json.dumps(dict(raw, name="huge", padding="x" * (1024 * 1024 + 1))))
    loaded = load_all(tmp_path)
    assert [c.name for c in loaded.configs] == ["good"]
    errors = {Path(e.path).name: str(e) for e in loaded.errors}
    assert sorted(errors) == ["deep.json", "huge.json", "latin1.json"]
    assert "not UTF-8" in errors["latin1.json"] and "nested too deeply" in errors["deep.json"]
    assert "at most 1048576" in errors["huge.json"]
    for name in errors:  # the job's own start (load_config) reports the same, naming the file
        with pytest.raises(ConfigError, match=name):
            load_config(tmp_path / name)


@pytest.mark.parametrize("names", [("a.json", "b.json"), ("b.json", "a.json")])
def test_two_configs_with_one_name_are_both_refused_whatever_the_order(raw, tmp_path, names):
    first, second = names
    (tmp_path / first).write_text(json.dumps(dict(raw, name="cards")))
    (tmp_path / second).write_text(
        json.dumps(dict(raw, name="cards", destination_table="db.other", latest_history_table="db.other_l"))
    )
    loaded = load_all(tmp_path)
    assert loaded.configs == ()
    errors = {Path(e.path).name: " ".join(e.problems) for e in loaded.errors}
    assert sorted(errors) == ["a.json", "b.json"]
    assert str(tmp_path / "b.json") in errors["a.json"] and str(tmp_path / "a.json") in errors["b.json"]
    assert "'cards'" in errors["a.json"] and "none of these configs is loaded" in errors["b.json"]


def test_a_three_way_name_clash_refuses_all_three_and_leaves_the_rest(raw, tmp_path):
    for i, n in enumerate(["x", "y", "z"]):
        (tmp_path / f"{n}.json").write_text(
            json.dumps(dict(raw, name="dup", destination_table=f"db.d{i}", latest_history_table=f"db.l{i}"))
        )
    (tmp_path / "ok.json").write_text(json.dumps(dict(raw, name="ok", destination_table="db.ok", latest_history_table="db.ok_l")))
    loaded = load_all(tmp_path)
    assert [c.name for c in loaded.configs] == ["ok"]
    errors = {Path(e.path).name: " ".join(e.problems) for e in loaded.errors}
    assert sorted(errors) == ["x.json", "y.json", "z.json"]
    assert str(tmp_path / "y.json") in errors["x.json"] and str(tmp_path / "z.json") in errors["x.json"]


def test_url_env_may_only_name_a_summary_alert_variable(raw, tmp_path):
    for name in ["AIRFLOW__API_AUTH__JWT_SECRET", "SUMMARY_CATALOGS", "SUMMARY_ALERT_"]:
        raw["airflow"] = dict(raw.get("airflow", {}), alerts={"webhook": {"url_env": name}})
        path = tmp_path / "c.json"
        path.write_text(json.dumps(raw))
        with pytest.raises(ConfigError, match=r"airflow\.alerts\.webhook\.url_env: .*SUMMARY_ALERT_") as info:
            load_config(path)
        assert str(path) in str(info.value)
    raw["airflow"]["alerts"] = {"webhook": {"url_env": "SUMMARY_ALERT_CARDS"}}
    path.write_text(json.dumps(raw))
    assert load_config(path).airflow.alerts.webhook_url_env == "SUMMARY_ALERT_CARDS"


def test_a_bad_url_is_not_echoed_in_the_config_error(raw, tmp_path):
    raw["airflow"] = dict(raw.get("airflow", {}), alerts={"webhook": {"url": "ftp://user:TOPSECRET@h/path"}})
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"airflow\.alerts\.webhook\.url: not an http") as info:
        load_config(path)
    assert "TOPSECRET" not in str(info.value) and "valid name" not in str(info.value)
