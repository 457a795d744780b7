"""The config's ``mapper_expr`` checked with Spark at job start: against the allowlist, and against the source table.

It reads the source table (its columns and their types), so it lives here rather than in ``core``; the mapping
it checks is ``core/mapping.py``'s.
"""

import os

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.config import SummaryConfig
from spark_jobs.core.expressions import analyzed_problems, config_policy, lexical_problem, parsed_problems
from spark_jobs.storage.tables import table_exists


def spark_expression_problems(spark: SparkSession, cfg: SummaryConfig) -> list[str]:
    """Check every ``mapper_expr`` with Spark itself, at job start (the config loader cannot).

    Each expression must pass the config allowlist (core/expressions.py) as parsed;
    with the source table present each is also analysed, in order, against the
    columns it will see, so unknown columns, type errors and anything the
    analyzer resolves to a node outside the allowlist are caught too.
    """
    policy = config_policy(os.environ)
    steps: list[tuple[str, int, str, str, str | None]] = [
        ("column_transformations", i, d.name, d.mapper_expr, None) for i, d in enumerate(cfg.column_transformations)
    ]
    steps += [("inferred_columns", i, d.name, d.mapper_expr, None) for i, d in enumerate(cfg.inferred_columns)]
    steps += [("rolling_columns", i, r.mapper_column, r.mapper_expr, r.sql_type) for i, r in enumerate(cfg.rolling_columns)]
    # A mapper_expr may read the mapped columns and every column an earlier step named.
    visible = [*cfg.columns.values(), *[name for _, _, name, _, _ in steps]]
    problems = []
    for key, index, _, expr, _ in steps:
        found = [p for p in (lexical_problem(expr, policy.max_length),) if p] or parsed_problems(spark, expr, policy, visible)
        problems += [f"{key}[{index}].mapper_expr: {problem}" for problem in found]
    if problems or not table_exists(spark, cfg.source_table):
        return problems
    source = spark.table(cfg.source_table)
    missing = [c for c in cfg.columns if c not in source.columns]
    if missing:
        return [f"columns: source column(s) {missing} are not in {cfg.source_table}"]
    df = spark.createDataFrame([], T.StructType([f for f in source.schema.fields if f.name in cfg.columns]))
    df = df.select(*[F.col(f"`{src}`").alias(dst) for src, dst in cfg.columns.items()])
    for key, index, name, expr, type_name in steps:
        column = F.expr(expr) if type_name is None else F.expr(expr).cast(type_name)
        found, _ = analyzed_problems(spark, df, column, policy)
        if found:
            problems += [f"{key}[{index}].mapper_expr: {problem}" for problem in found]
        else:
            df = df.withColumn(name, column)
    return problems
