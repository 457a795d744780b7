"""The v4 algorithms (Summary Pipeline v4, the predecessor; see docs/v4-defects.md), rewritten as baselines.

They run on copies of the same tables (without this project's bookkeeping
columns) so the benchmark compares algorithms on the same data. They keep v4's
shape on purpose: the forward step joins the month with latest_summary,
shifts the arrays and MERGEs into both tables; Case III collects every month of
every affected account and rebuilds every row's arrays. (Their known defects
do not matter for timing.)
"""

from pyspark.sql import Window
from pyspark.sql import functions as F

from spark_jobs.core.history import clean_date, grid
from spark_jobs.stages.partitioning import configure_shuffle_partitions


def _columns(table_columns):
    return ", ".join(f"`{c}`" for c in table_columns)


def forward_month(spark, cfg, month, summary_table, latest_table):
    """v4 ``_process_single_month`` for an existing state (the incremental branch)."""
    key, part, version = cfg.key_column, cfg.month_column, cfg.version_column
    source = spark.table(cfg.source_table).select(*[F.col(s).alias(d) for s, d in cfg.columns.items()])
    source = source.where(F.col(part) == month)
    ordered = Window.partitionBy(key).orderBy(F.col(version).desc())
    source = source.withColumn("_rn", F.row_number().over(ordered)).where("_rn = 1").drop("_rn")
    for derived in (*cfg.column_transformations, *cfg.inferred_columns):
        source = source.withColumn(derived.name, F.expr(derived.mapper_expr))
    count = source.count()
    partitions = configure_shuffle_partitions(spark, count, cfg.performance)
    source = source.repartition(partitions, key).cache()
    previous = spark.table(latest_table).select(key, part, *cfg.history_columns)
    previous.count()
    previous = previous.repartition(partitions, key)
    for rolling in cfg.rolling_columns:
        source = source.withColumn(rolling.mapper_column, F.expr(rolling.mapper_expr).cast(rolling.sql_type))
    joined = source.alias("c").join(previous.alias("p"), key, "left")
    month_diff = F.when(
        F.col(f"p.{part}").isNotNull(),
        F.months_between(F.to_date(F.lit(month), "yyyy-MM"), F.to_date(F.col(f"p.{part}"), "yyyy-MM")).cast("int"),
    ).otherwise(1)
    joined = joined.withColumn("MONTH_DIFF", month_diff)
    target_columns = [c for c in spark.table(summary_table).columns]
    select = []
    for column in target_columns:
        if column in cfg.history_columns:
            rolling = next(r for r in cfg.rolling_columns if r.history_column == column)
            value = F.array(F.col(f"c.{rolling.mapper_column}").cast(rolling.sql_type))
            empty = F.array(*[F.lit(None).cast(rolling.sql_type)] * rolling.num_cols)
            prev = F.coalesce(F.col(f"p.{column}"), empty)
            nulls = F.array_repeat(F.lit(None).cast(rolling.sql_type), F.col("MONTH_DIFF") - 1)
            shifted = (
                F.when(F.col("MONTH_DIFF") == 1, F.slice(F.concat(value, prev), 1, rolling.num_cols))
                .when(F.col("MONTH_DIFF") > 1, F.slice(F.concat(value, nulls, prev), 1, rolling.num_cols))
                .otherwise(F.concat(value, F.array(*[F.lit(None).cast(rolling.sql_type)] * (rolling.num_cols - 1))))
            )
            select.append(shifted.alias(column))
        elif column in cfg.grid_names:
            continue
        elif column == cfg.primary_date_column:
            select.append(F.coalesce(F.col(f"c.{column}"), F.to_date(F.lit(month))).alias(column))
        else:
            select.append(F.col(f"c.{column}").alias(column))
    result = joined.select(*select)
    for g in cfg.grid_columns:
        result = result.withColumn(g.name, grid(g, cfg.rolling_by_name(g.mapper_rolling_column).history_column))
    for column in cfg.date_col_list:
        result = result.withColumn(column, clean_date(column))
    result = result.select(*target_columns).cache()
    result.count()
    _merge_both(spark, result, cfg, summary_table, latest_table, target_columns)
    source.unpersist()
    result.unpersist()


def _merge_both(spark, result, cfg, summary_table, latest_table, target_columns):
    """v4's two MERGEs (through the DataFrame API: Spark 4.1 cannot plan a MERGE from this temp view, SPARK-57539)."""
    key, part = cfg.key_column, cfg.month_column
    same_row = (F.col(f"{summary_table}.`{key}`") == F.col(f"r.`{key}`")) & (
        F.col(f"{summary_table}.`{part}`") == F.col(f"r.`{part}`")
    )
    result.alias("r").mergeInto(summary_table, same_row).whenMatched().updateAll().whenNotMatched().insertAll().merge()
    newest = Window.partitionBy(key).orderBy(F.col(part).desc())
    latest = result.withColumn("_rn", F.row_number().over(newest)).where("_rn = 1").select(*target_columns)
    same_key = F.col(f"{latest_table}.`{key}`") == F.col(f"r.`{key}`")
    latest.alias("r").mergeInto(latest_table, same_key).whenMatched().updateAll().whenNotMatched().insertAll().merge()


def case_iii(spark, cfg, corrections, summary_table, latest_table):
    """v4 ``_process_case_iii``: rebuild every row of every affected account from all of its months."""
    key, part, version = cfg.key_column, cfg.month_column, cfg.version_column
    length = cfg.history_length
    target_columns = [c for c in spark.table(summary_table).columns]
    preserve = [
        c for c in target_columns if c not in cfg.history_columns and c not in cfg.grid_names and c not in (key, part, version)
    ]
    records = corrections.select(*[F.col(s).alias(d) for s, d in cfg.columns.items()])
    for derived in (*cfg.column_transformations, *cfg.inferred_columns):
        records = records.withColumn(derived.name, F.expr(derived.mapper_expr))
    for rolling in cfg.rolling_columns:
        records = records.withColumn(rolling.mapper_column, F.expr(rolling.mapper_expr).cast(rolling.sql_type))
    records.select(key, part, version, *preserve).createOrReplaceTempView("backfill_records")
    records.select(key).distinct().createOrReplaceTempView("affected_accounts")
    month_int = lambda c: f"(CAST(SUBSTRING({c}, 1, 4) AS INT) * 12 + CAST(SUBSTRING({c}, 6, 2) AS INT))"  # noqa: E731
    struct_cols = ", ".join(f"`{c}`" for c in preserve)
    history = []
    for rolling in cfg.rolling_columns:
        history.append(
            f"TRANSFORM(SEQUENCE(0, {length - 1}), o -> AGGREGATE(FILTER(e.month_values, mv -> mv.month_int = e.month_int - o), "
            f"CAST(NULL AS {rolling.sql_type}), (acc, x) -> x.`{rolling.mapper_column}`)) AS `{rolling.history_column}`"
        )
    scalars = [f"element_at(FILTER(e.month_values, mv -> mv.month_int = e.month_int), 1).`{c}` AS `{c}`" for c in preserve]
    rebuilt = spark.sql(f"""
        WITH backfill_validated AS (
            SELECT b.* FROM backfill_records b
            LEFT JOIN (SELECT `{key}`, `{part}`, `{version}` FROM {summary_table}
                       WHERE `{key}` IN (SELECT `{key}` FROM affected_accounts)) s
              ON b.`{key}` = s.`{key}` AND b.`{part}` = s.`{part}`
            WHERE s.`{version}` IS NULL OR b.`{version}` > s.`{version}`),
        existing_data AS (
            SELECT `{key}`, `{part}`, {month_int(f"`{part}`")} AS month_int, {struct_cols}, `{version}`, 2 AS priority
            FROM {summary_table} WHERE `{key}` IN (SELECT `{key}` FROM affected_accounts)),
        combined AS (
            SELECT `{key}`, `{part}`, {month_int(f"`{part}`")} AS month_int, {struct_cols}, `{version}`, 1 AS priority
            FROM backfill_validated
            UNION ALL SELECT * FROM existing_data),
        deduped AS (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY `{key}`, `{part}` ORDER BY priority, `{version}` DESC) AS rn FROM combined),
        final_data AS (SELECT * FROM deduped WHERE rn = 1),
        account_months AS (
            SELECT `{key}`, COLLECT_LIST(STRUCT(month_int, {struct_cols})) AS month_values,
                   COLLECT_LIST(STRUCT(`{part}`, month_int, `{version}`)) AS month_metadata
            FROM final_data GROUP BY `{key}`),
        exploded AS (
            SELECT `{key}`, month_values, meta.`{part}`, meta.month_int, meta.`{version}`
            FROM account_months LATERAL VIEW EXPLODE(month_metadata) t AS meta)
        SELECT e.`{key}`, e.`{part}`, {", ".join(history)}, {", ".join(scalars)}, e.`{version}` FROM exploded e
    """)
    for g in cfg.grid_columns:
        rebuilt = rebuilt.withColumn(g.name, grid(g, cfg.rolling_by_name(g.mapper_rolling_column).history_column))
    result = rebuilt.select(*target_columns).cache()
    result.count()
    _merge_both(spark, result, cfg, summary_table, latest_table, target_columns)
    result.unpersist()
