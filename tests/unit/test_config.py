"""Config loading: every v4 key accepted, every kind of error named by file and key path."""

import copy
import json
from pathlib import Path

import pytest

from spark_jobs.config import ConfigError, config_from_dict, lexical_expression_problem, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"


@pytest.fixture
def raw():
    return json.loads(EXAMPLE.read_text())


def problems_of(raw_config, tmp_path):
    path = tmp_path / "bad_config.json"
    path.write_text(json.dumps(raw_config))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message, "the error names the file"
    return message


def test_the_example_config_loads_and_derives_its_column_sets():
    cfg = load_config(EXAMPLE)
    assert cfg.key_column == "cons_acct_key" and cfg.history_length == 36
    assert cfg.history_columns[:2] == ("balance_am_history", "past_due_am_history")
    assert cfg.rolling_by_name("credit_limit_am").num_cols == 24
    # carried forward: every scalar except key/month/version/primary date, rolling mappers and exclusions
    assert cfg.carry_columns == (
        "bureau_member_id", "portfolio_rating_type_cd", "acct_type_dtl_cd", "open_dt", "last_payment_dt",
        "hi_credit_am", "asset_class_cd", "interest_rate", "orig_loan_am",
    )  # fmt: skip
    assert cfg.summary_columns[-3:] == ("_record_digest", "_previous_month", "_carried_columns")
    assert cfg.source_column("balance_am") == "acct_bal_am"


def test_v4_grid_spelling_seperator_is_accepted(raw):
    raw["grid_columns"][0].pop("separator")
    raw["grid_columns"][0]["seperator"] = "-"
    assert config_from_dict(raw).grid_columns[0].separator == "-"


def test_num_cols_defaults_to_history_length(raw):
    raw["history_length"] = 12
    del raw["rolling_columns"][0]["num_cols"]
    assert config_from_dict(raw).rolling_columns[0].num_cols == 12


@pytest.mark.faults  # also a bad-input case of the fault tier
def test_invalid_json_names_line_and_column(tmp_path, tally):
    path = tmp_path / "broken.json"
    path.write_text('{"source_table": "a.b",\n  "columns": }')
    with pytest.raises(ConfigError, match=r"broken.json: invalid JSON at line 2 column 14"):
        load_config(path)
    tally.add("bad input: config (invalid JSON)")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.json: file not found"):
        load_config(tmp_path / "nope.json")


@pytest.mark.faults  # also a bad-input case of the fault tier
@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda r: r.update(surprise=1), "(top level): unknown key(s) 'surprise'"),
        (lambda r: r["rolling_columns"][1].update(colour="red"), "rolling_columns[1]: unknown key(s) 'colour'"),
        (lambda r: r.pop("primary_column"), "'primary_column' is required"),
        (lambda r: r["rolling_columns"][2].update(type="Float"), "rolling_columns[2].type: unsupported rolling column type"),
        (lambda r: r["rolling_columns"][0].update(num_cols=0), "rolling_columns[0].num_cols: 0 is less than the minimum of 1"),
        (lambda r: r.update(destination_table="summary table"), "destination_table: 'summary table' is not a table identifier"),
        (lambda r: r["performance"].update(min_partitions="4"), "performance.min_partitions: '4' is not of type 'integer'"),
    ],
)
def test_schema_errors_name_the_key_path(raw, tmp_path, change, expected, tally):
    change(raw)
    assert expected in problems_of(raw, tmp_path)
    tally.add("bad input: config (schema)")


@pytest.mark.faults  # also a bad-input case of the fault tier
@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda r: r["rolling_columns"].append(dict(r["rolling_columns"][0], mapper_column="x")),
            "rolling_columns[6].name: 'balance_am' is already used by rolling_columns[0]",
        ),
        (
            lambda r: r["columns"].update(acct_bal_am_copy="balance_am"),
            "columns.acct_bal_am_copy: destination 'balance_am' is also the destination of columns.acct_bal_am",
        ),
        (
            lambda r: r["grid_columns"][0].update(mapper_rolling_column="no_such_rolling"),
            "grid_columns[0].mapper_rolling_column: 'no_such_rolling' is not the name of a rolling column",
        ),
        (
            lambda r: r["columns"].update(legacy_hist="balance_am_history"),
            "rolling_columns[0] (its history array): generated column 'balance_am_history' clashes with a column",
        ),
        (
            lambda r: r["inferred_columns"].append({"name": "payment_history_grid", "mapper_expr": "1"}),
            "grid_columns[0]: generated column 'payment_history_grid' clashes",
        ),
        (lambda r: r.update(primary_column="no_such_key"), "primary_column: 'no_such_key' is not a destination name"),
        (lambda r: r["date_col_list"].append("nope_dt"), "date_col_list[4]: 'nope_dt' is not a scalar column"),
        (lambda r: r["coalesce_exclusion_cols"].append("zzz"), "coalesce_exclusion_cols[2]: 'zzz' is not a scalar column"),
        (lambda r: r["latest_history_addon_cols"].append("zzz"), "latest_history_addon_cols[6]: 'zzz' is not a summary column"),
        (lambda r: r["columns"].update(x="_previous_month"), "column '_previous_month'"),
        (
            lambda r: r["rolling_columns"][5].update(type="Decimal(40,2)"),
            "rolling_columns[5].type: 'Decimal(40,2)' needs 1 <= precision <= 38",
        ),
        (
            lambda r: r.update(latest_history_table=r["destination_table"]),
            "must name three different tables",
        ),
        (
            lambda r: r["inferred_columns"][0].update(mapper_expr="CASE WHEN (a = 1 THEN 2 END"),
            "inferred_columns[0].mapper_expr: 1 unclosed '('",
        ),
        (
            lambda r: r["column_transformations"][0].update(mapper_expr="1; DROP TABLE x"),
            "column_transformations[0].mapper_expr: ';' at character 2",
        ),
        (
            lambda r: r.update(catalog={"catalogs": {"local": {"uri": "http://x"}}}),
            "catalog.catalogs.local: needs `type`",
        ),
    ],
)
def test_semantic_errors_name_the_key_path(raw, tmp_path, change, expected, tally):
    change(raw)
    assert expected in problems_of(raw, tmp_path)
    tally.add("bad input: config (semantic)")


def test_every_problem_is_reported_at_once(raw, tmp_path):
    raw["rolling_columns"][0]["num_cols"] = 0
    raw["grid_columns"][0]["placeholder"] = 5
    message = problems_of(raw, tmp_path)
    assert "2 problem(s)" in message
    assert "rolling_columns[0].num_cols" in message and "grid_columns[0].placeholder" in message


def test_semantic_checks_see_the_config_as_given(raw):
    before = copy.deepcopy(raw)
    config_from_dict(raw)
    assert raw == before


@pytest.mark.parametrize(
    "expr, problem",
    [
        ("CASE WHEN x = ')' THEN 1 END", None),
        ("concat('it''s', \"a;b\")", None),
        ("   ", "empty expression"),
        ("f(x))", "unbalanced ')' at character 5"),
        ("'open", "unterminated ' quote"),
    ],
)
def test_lexical_expression_check(expr, problem):
    assert lexical_expression_problem(expr) == problem
