"""The backfill filter and config expressions: only allowlisted analyzed trees pass (spark_jobs/core/expressions.py).

Hand-picked hostile filters first (each once reached the JVM or the outside
world, or could), then a property test: random expression trees over allowed
and refused functions, IDENTIFIER(...), backquotes, qualified names and
nesting; whatever is accepted must analyze to allowlisted nodes only, checked
through Catalyst's own JSON of the tree rather than the checker's walk.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_jobs.config import config_from_dict
from spark_jobs.core.expressions import ANALYZER_PLUMBING, FILTER, allowed_classes
from spark_jobs.core.filters import checked_filter
from spark_jobs.errors import ConcurrentRunError, UsageError
from spark_jobs.names import LOCK_PREFIX
from spark_jobs.report import RunReport
from spark_jobs.stages.backfill import run_backfill
from spark_jobs.storage.iceberg import table_properties
from spark_jobs.storage.source_checks import spark_expression_problems
from tests.stages.test_backfill import backfill
from tests.support import append_source, load, record

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def source(spark):
    """An Iceberg source table (so Iceberg's metadata columns exist too) with one record."""
    _, cfg = load("t_filters_module")
    if not spark.catalog.tableExists(cfg.source_table):
        append_source(spark, cfg, [record(1, "2024-01", 1, bal=1, status="11")])
    return spark.table(cfg.source_table)


@pytest.mark.faults  # also a bad-input case of the fault tier
@pytest.mark.parametrize(
    "text, reason",
    [
        # the reported attack: a function name resolved only at analysis
        ("raise_error(IDENTIFIER('reflect')('java.lang.System','getProperty','java.home')) IS NULL", "IDENTIFIER"),
        ("IDENTIFIER('reflect')('java.lang.System', 'getProperty', 'java.home') IS NOT NULL", "IDENTIFIER"),
        ("reflect('java.lang.System', 'exit', '1') IS NULL", "function 'reflect' is not allowed"),
        ("`java_method`('java.lang.System', 'getenv', 'PATH') IS NULL", "function 'java_method' is not allowed"),
        ("system.bucket(4, acct_id) = 1", "function 'system.bucket' is not allowed"),
        ("assert_true(acct_id > 0) IS NULL", "function 'assert_true' is not allowed"),
        # reading other tables or Iceberg's metadata columns
        ("acct_id IN (SELECT acct FROM local.db.summary)", "subqueries are not allowed"),
        ("EXISTS (SELECT 1)", "subqueries are not allowed"),
        ("other_table.acct_id = 1", "'other_table.acct_id' is not a column of the input"),
        ("local.t_filters_module.accounts.acct_id = 1", "is not a column of the input"),
        ("_file LIKE '%'", "'_file' is not a column of the input"),
        ("IDENTIFIER('_file') LIKE '%'", "IDENTIFIER"),
        # non-deterministic, aggregate, window, generator, regex backtracking, size bombs
        ("rand() < 0.5", "function 'rand' is not allowed"),
        ("uuid() = 'x'", "function 'uuid' is not allowed"),
        ("current_date() > DATE'2024-01-01'", "function 'current_date' is not allowed"),
        ("max(acct_id) > 0", "function 'max' is not allowed"),
        ("row_number() OVER (ORDER BY acct_id) = 1", "not allowed"),
        ("explode(array(1, 2)) = 1", "function 'explode' is not allowed"),
        ("exists(array(1), x -> x > 0)", "not allowed"),
        ("rpt_mo RLIKE '(a+)+$'", "not allowed"),
        ("repeat('a', 2000000000) = ''", "function 'repeat' is not allowed"),
        ("rpt_mo LIKE '%a%b%c%d%e%'", "at most 4 '%' wildcards"),
        ("rpt_mo LIKE status", "LIKE pattern must be a literal"),
        # text
        ("acct_id = 1; DROP TABLE x", "second statement"),
        ("acct_id = 1 -- and the rest", "comments are not allowed"),
        ("acct_id = 1 /* x */", "comments are not allowed"),
        ("acct_id = 1 OR " * 70 + "acct_id = 2", "at most 1000 are allowed"),
        ("acct_id = ", "not one SQL expression"),
        ("", "it is empty"),
        # not a condition
        ("no_such_column = 1", "'no_such_column' is not a column"),
        ("acct_id + 1", "not a boolean condition"),
    ],
)
def test_refused_filters_name_the_reason(spark, source, text, reason, tally):
    with pytest.raises(UsageError, match=reason.replace("(", r"\(").replace("$", r"\$")):
        checked_filter(spark, source, text)
    tally.add("bad input: backfill filter")


@pytest.mark.parametrize(
    "text",
    [
        "acct_id = 2",
        "`acct_id` > 1 AND NOT (bal IS NULL)",
        "rpt_mo BETWEEN '2024-01' AND '2024-03'",
        "upper(status) = '11' AND acct_id IN (1, 2)",
        "to_date(concat(rpt_mo, '-01')) >= DATE'2024-01-01'",
        "coalesce(status, '') LIKE '1%' OR length(trim(member)) > 0",
        "CASE WHEN bal > 0 THEN true ELSE false END",
        "year(acct_dt) = 2024 OR acct_dt IS NULL",
    ],
)
def test_ordinary_filters_pass(spark, source, text):
    rows = source.where(checked_filter(spark, source, text)).count()
    assert rows == source.where(text).count()  # the same rows as Spark's own reading of the text


def test_a_refused_filter_is_refused_before_the_run_lock_is_waited_for(spark, namespace):
    _, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    backfill(spark, cfg)  # creates the tables, the control table among them
    from spark_jobs.storage.iceberg import update_properties

    holder = {
        LOCK_PREFIX + "token": "t",
        LOCK_PREFIX + "owner": "other-run",
        LOCK_PREFIX + "host": "elsewhere",
        LOCK_PREFIX + "expires-at": "4e9",
    }
    update_properties(spark, cfg.control_table, lambda _: holder)
    with pytest.raises(UsageError, match="function 'reflect' is not allowed"):
        backfill(spark, cfg, backfill_filter="reflect('java.lang.System', 'getProperty', 'java.home') IS NULL")
    with pytest.raises(ConcurrentRunError):  # the same stage with a good filter does wait for, and fail on, the lock
        run_backfill(spark, cfg, RunReport(mode="backfill", config=cfg.path, run_id="b-good"), "acct_id = 1", lock_wait_seconds=0)
    assert table_properties(spark, cfg.control_table)[LOCK_PREFIX + "owner"] == "other-run"


def test_config_expressions_are_allowlisted_at_job_start(spark, namespace):
    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    assert spark_expression_problems(spark, cfg) == []
    hostile = {
        0: "CASE WHEN java_method('java.lang.System', 'getenv', 'HOME') IS NULL THEN acct_type END",
        1: "IDENTIFIER('reflect')('java.lang.System', 'getProperty', 'user.home')",
    }
    raw["column_transformations"][0]["mapper_expr"] = hostile[0]
    raw["inferred_columns"][0]["mapper_expr"] = hostile[1]
    problems = spark_expression_problems(spark, config_from_dict(raw))
    assert problems == [
        "column_transformations[0].mapper_expr: function 'java_method' is not allowed",
        "inferred_columns[0].mapper_expr: IDENTIFIER(...) are not allowed",
    ], problems
    raw, _ = load(namespace)
    raw["inferred_columns"][0]["mapper_expr"] = "CASE WHEN rand() > 0.5 THEN '1' END"  # re-runs would differ
    refused = spark_expression_problems(spark, config_from_dict(raw))
    assert refused == ["inferred_columns[0].mapper_expr: function 'rand' is not allowed"]
    raw["inferred_columns"][0]["mapper_expr"] = "regexp_replace(status, '[^0-9]', '')"  # a config may clean with regexes
    assert spark_expression_problems(spark, config_from_dict(raw)) == []


# --- the property test -----------------------------------------------------------------------------

COLUMNS = ["acct_id", "rpt_mo", "bal", "status", "acct_dt"]
REFUSED_FUNCTIONS = ["reflect", "java_method", "rand", "uuid", "raise_error", "assert_true", "max", "explode", "repeat",
                     "regexp_replace", "current_date", "input_file_name", "sha2", "size", "array"]  # fmt: skip
ALLOWED_FUNCTIONS = ["upper", "lower", "trim", "length", "coalesce", "abs", "year", "concat", "substr", "left", "nvl"]


def _names():
    plain = st.sampled_from(COLUMNS)
    return st.one_of(
        plain,
        plain.map(lambda c: f"`{c}`"),
        plain.map(lambda c: f"accounts.{c}"),
        plain.map(lambda c: f"local.t_filters_module.accounts.{c}"),
        st.sampled_from(["_file", "_pos", "_spec_id", "_partition", "no_such"]),
        plain.map(lambda c: f"IDENTIFIER('{c}')"),
    )


def _terms():
    literal = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(["'11'", "'2024-01'", "NULL", "DATE'2024-01-01'"]))
    return st.recursive(
        st.one_of(_names(), literal),
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(ALLOWED_FUNCTIONS + REFUSED_FUNCTIONS), st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"
            ),
            st.tuples(st.sampled_from(ALLOWED_FUNCTIONS + REFUSED_FUNCTIONS), st.lists(inner, min_size=1, max_size=2)).map(
                lambda t: f"IDENTIFIER('{t[0]}')({', '.join(t[1])})"
            ),
            st.tuples(inner, st.sampled_from(["+", "-", "*", "||"]), inner).map(" ".join),
            inner.map(lambda t: f"({t})"),
        ),
        max_leaves=6,
    )


def _conditions():
    comparison = st.tuples(_terms(), st.sampled_from(["=", "<", ">=", "<=>", "LIKE", "IN"]), _terms()).map(
        lambda t: f"{t[0]} IN ({t[2]}, 1)" if t[1] == "IN" else f"{t[0]} {t[1]} {t[2]}"
    )
    return st.recursive(
        st.one_of(comparison, _terms().map(lambda t: f"{t} IS NULL")),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(" ".join),
            inner.map(lambda c: f"NOT ({c})"),
            st.tuples(inner, inner).map(lambda t: f"CASE WHEN {t[0]} THEN true ELSE {t[1]} END"),
        ),
        max_leaves=4,
    )


def _catalyst_classes(spark, source, condition):
    """Every expression class of the analyzed filter, from Catalyst's JSON of the tree (not the checker's walk)."""
    plan = source.select(condition.alias("__f"))._jdf.queryExecution().analyzed()
    nodes = json.loads(plan.expressions().apply(0).toJSON())
    return {node["class"].rsplit(".", 1)[-1] for node in nodes}


def test_whatever_is_accepted_analyzes_to_allowlisted_nodes_only(spark, source):
    accepted = []

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=_conditions())
    def check(text):
        try:
            condition = checked_filter(spark, source, text)
        except UsageError:
            return  # refused, with a reason: fine
        classes = _catalyst_classes(spark, source, condition)
        assert classes <= allowed_classes(spark, FILTER) | ANALYZER_PLUMBING, (text, classes)
        plan = source.select(condition.alias("__f"))._jdf.queryExecution().analyzed()
        assert plan.expressions().apply(0).deterministic(), text
        columns = {str(a.name()) for a in _seq(plan.references())}
        assert columns <= set(source.columns), (text, columns)
        accepted.append(text)

    check()
    assert len(accepted) >= 20, f"too few generated filters were accepted to say much: {accepted}"


def _seq(scala):
    iterator = scala.toSeq().iterator()
    items = []
    while iterator.hasNext():
        items.append(iterator.next())
    return items


def test_work_under_a_time_limit_is_cancelled_and_named(spark):
    """A filtered batch holds the run lock: its jobs are cancelled when they outlast --batch-time-limit."""
    import time

    from spark_jobs.stages.runs import time_limit

    started = time.monotonic()
    with pytest.raises(UsageError, match="counting forever did not finish within 2 s"):
        with time_limit(spark, 2, "counting forever"):
            spark.range(0, 10**12, 1, 50000).selectExpr("sum(id % 7)").collect()  # many small tasks: hours
    assert time.monotonic() - started < 60
    assert spark.range(10).count() == 10, "the session goes on; later jobs are not in the cancelled group"
