"""The tables the pipeline creates and the properties it gives them (no hand-written DDL).

* ``summary``: partitioned by month, locally sorted by key; merge-on-read,
  because corrections touch few rows of old months, so a MERGE writes delete
  files instead of rewriting whole data files (maintenance compacts them).
* ``latest_summary``: unpartitioned, locally sorted by key; merge-on-read
  too, because a backfill changes few of its rows, while every forward month
  rewrites it whole into plain files (tables created before kept copy-on-write,
  which is only slower for backfills).
* ``<summary>_staging``: created by versions before the run branches (``publish.py``): the rows a
  run computed before it committed them. It is no longer created; one that exists is only read,
  to finish a run such a version left.
* ``<summary>_rejects``: rejected source records with their reason.
* ``<summary>_backfill``: partitioned by run id; a classification's records, waiting for their case stage
  (created by ``stages/backfill.py``).
* ``<summary>_control``: its rows are unused; its table properties hold the run lock, the backfill mark,
  pending classifications and the months since maintenance (``names.py``).

Every table created here is tagged with its role and its owner (the config's
destination table and, when the config sets one, its ``name``). The pipeline deletes from, merges
into and locks only tables that carry its own tag, so a source table, another
config's table that happens to have one of these names, or a copied config that
kept the destination of the one it was copied from is refused, never wiped.

All are Iceberg format v2, zstd-compressed Parquet, with files up to
``performance.max_file_size_mb``, and old metadata files cleaned after commits.
"""

from collections.abc import Mapping, Sequence

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from spark_jobs import __version__
from spark_jobs.config import SummaryConfig, normalized_table
from spark_jobs.errors import SourceDataError
from spark_jobs.names import (
    BOOKKEEPING_COLUMNS,
    CARRIED_COLUMNS,
    CASE,
    CREATED_BY_VERSION,
    INSERT,
    MONTHS_SINCE_MAINTENANCE,
    PREVIOUS_MONTH,
    PROPERTY_PREFIX,
    RECORD_DIGEST,
    RUN_ID,
    TABLE_CONFIG,
    TABLE_OWNER,
    TABLE_ROLE,
)
from spark_jobs.storage.iceberg import table_properties, update_properties
from spark_jobs.storage.runlock import RunLock


def sql_string(value: object) -> str:
    """A Spark SQL string literal (or NULL) for ``value``."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


ROW_GROUP_BYTES = 4 * 1024 * 1024


def common_properties(cfg: SummaryConfig) -> dict[str, str]:
    return {
        "format-version": "2",
        "write.parquet.compression-codec": "zstd",
        "write.target-file-size-bytes": str(cfg.performance.max_file_size_mb * 1024 * 1024),
        # Row groups of a few MB: Iceberg splits a file only between row groups, so a month's file (or the one
        # file of a small latest_summary) is read by several tasks instead of one.
        "write.parquet.row-group-size-bytes": str(ROW_GROUP_BYTES),
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "100",
        "history.expire.max-snapshot-age-ms": str(cfg.performance.snapshot_retention_days * 24 * 3600 * 1000),
    }


def merge_on_read_properties() -> dict[str, str]:
    """Corrections write delete files (one per partition and task: one per data file would be hundreds of tiny
    files for a correction spread over every file) instead of rewriting the data files they touch."""
    return {
        "write.merge.mode": "merge-on-read",
        "write.update.mode": "merge-on-read",
        "write.delete.mode": "merge-on-read",
        "write.delete.granularity": "partition",
        "write.merge.isolation-level": "serializable",
    }


def summary_properties(cfg: SummaryConfig) -> dict[str, str]:
    """summary's and latest_summary's: merge-on-read both (a backfill changes few rows of latest_summary too; every
    forward month rewrites that table into plain files)."""
    return {**common_properties(cfg), "write.distribution-mode": "hash", **merge_on_read_properties()}


def small_table_properties(cfg: SummaryConfig) -> dict[str, str]:
    return {**common_properties(cfg), "write.delete.mode": "copy-on-write", "write.merge.mode": "copy-on-write"}


def summary_schema(cfg: SummaryConfig, mapped_schema: T.StructType) -> T.StructType:
    """The schema of summary and latest_summary, from the schema of mapped source records."""
    by_name = {f.name: f.dataType for f in mapped_schema.fields}
    fields = [T.StructField(c, by_name[c]) for c in cfg.mapped_columns]
    for rolling in cfg.rolling_columns:
        fields.append(T.StructField(rolling.history_column, T.ArrayType(by_name[rolling.mapper_column])))
    fields += [T.StructField(g, T.StringType()) for g in cfg.grid_names]
    fields += [
        T.StructField(RECORD_DIGEST, T.LongType()),
        T.StructField(PREVIOUS_MONTH, T.StringType()),
        T.StructField(CARRIED_COLUMNS, T.ArrayType(T.StringType())),
    ]
    return T.StructType(fields)


def rejects_schema() -> T.StructType:
    return T.StructType(
        [
            T.StructField(RUN_ID, T.StringType()),
            T.StructField("rejected_at", T.TimestampType()),
            T.StructField("reason", T.StringType()),
            T.StructField("record_key", T.StringType()),
            T.StructField("record_month", T.StringType()),
            T.StructField("record_version", T.StringType()),
            T.StructField("record", T.StringType()),
            T.StructField(RECORD_DIGEST, T.LongType()),
        ]
    )


def control_schema() -> T.StructType:
    """The control table carries its state in table properties; its rows are unused."""
    return T.StructType([T.StructField("name", T.StringType()), T.StructField("value", T.StringType())])


def create_table_sql(
    identifier: str, schema: T.StructType, properties: Mapping[str, str], partitioned_by: Sequence[str] = ()
) -> str:
    columns = ",\n  ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
    props = ",\n  ".join(f"'{k}' = '{v}'" for k, v in sorted(properties.items()))
    partition = f"\nPARTITIONED BY ({', '.join(f'`{c}`' for c in partitioned_by)})" if partitioned_by else ""
    return f"CREATE TABLE IF NOT EXISTS {identifier} (\n  {columns}\n) USING iceberg{partition}\nTBLPROPERTIES (\n  {props}\n)"


def namespace_of(identifier: str) -> str:
    return identifier.rsplit(".", 1)[0]


def table_exists(spark: SparkSession, identifier: str) -> bool:
    return spark.catalog.tableExists(identifier)


def owner_of(cfg: SummaryConfig) -> str:
    return normalized_table(cfg.summary_table, cfg.catalog.default)


def ownership(cfg: SummaryConfig, role: str) -> dict[str, str]:
    """The tag a table created for ``cfg`` in ``role`` carries."""
    tag = {TABLE_ROLE: role, TABLE_OWNER: owner_of(cfg)}
    return {**tag, TABLE_CONFIG: cfg.name} if cfg.named else tag


def _looks_like(role: str, names: Sequence[str], properties: Mapping[str, str]) -> bool:
    """Whether an untagged table has what the pipeline gives its ``role`` table (tables created before tags)."""
    names = [n.lower() for n in names]
    bookkeeping = all(c.lower() in names for c in BOOKKEEPING_COLUMNS)
    return {
        "summary": bookkeeping,
        "latest_summary": bookkeeping,
        "staging": bookkeeping and names[-2:] == [INSERT, RUN_ID],
        "backfill": names[-2:] == [CASE, RUN_ID],
        "rejects": names == [f.name for f in rejects_schema().fields],
        # and the lock's, the backfill mark's or the maintenance counter's properties, which every run leaves
        "control": names == [f.name for f in control_schema().fields] and any(k.startswith(PROPERTY_PREFIX) for k in properties),
    }.get(role, False)


def ownership_problem(
    cfg: SummaryConfig, role: str, properties: Mapping[str, str], columns: Sequence[str]
) -> tuple[str | None, bool]:
    """Why a table is not ``cfg``'s ``role`` table (None: it is), and whether an untagged one may be adopted.

    Returns (problem, adopt). Tables created before tags existed carry none: such a table is adopted when it
    has the columns (and, for the control table, the pipeline's properties) the pipeline gives that table,
    which a table of anyone else's will not have by chance.
    """
    role_found, owner_found = properties.get(TABLE_ROLE), properties.get(TABLE_OWNER)
    config_found = properties.get(TABLE_CONFIG)
    if role_found == role and owner_found == owner_of(cfg):
        if not cfg.named or config_found == cfg.name:
            return None, False  # a config without `name` (a v4 file run by hand) is told apart by destination only
        if config_found is None:  # tagged before names were, or by a config without one: a named config claims it
            return None, True
        return (
            f"it is the {role} table of the config named {config_found!r}, not of {cfg.name!r} (two configs with one "
            f"destination_table; if this config was renamed, set the table property '{TABLE_CONFIG}' to {cfg.name!r})"
        ), False
    if role_found or owner_found:
        return f"it is the {role_found} table of {owner_found}, not the {role} table of {owner_of(cfg)}", False
    if _looks_like(role, columns, properties):
        return None, True
    return f"it was not created by the summary pipeline (no {TABLE_ROLE} property) and does not look like its {role} table", False


def require_owned(spark: SparkSession, cfg: SummaryConfig, identifier: str, role: str) -> None:
    """Refuse to write to ``identifier`` unless it is ``cfg``'s ``role`` table; tag a matching legacy table."""
    properties = table_properties(spark, identifier)
    columns = spark.table(identifier).columns if TABLE_ROLE not in properties else []
    problem, adopt = ownership_problem(cfg, role, properties, columns)
    if problem:
        raise SourceDataError(
            f"table {identifier} exists, but {problem}; the pipeline deletes from, merges into or locks its {role} "
            f"table, so it will not touch this one: rename that table or choose another destination_table in {cfg.path}"
        )
    if adopt:
        settings = ", ".join(f"'{k}' = '{v}'" for k, v in ownership(cfg, role).items())
        spark.sql(f"ALTER TABLE {identifier} SET TBLPROPERTIES ({settings})")


def create_table(
    spark: SparkSession,
    cfg: SummaryConfig,
    role: str,
    identifier: str,
    schema: T.StructType,
    properties: Mapping[str, str],
    partitioned_by: Sequence[str] = (),
    locally_ordered_by: Sequence[str] = (),
) -> bool:
    """Create ``identifier`` as ``cfg``'s ``role`` table if absent (a concurrent creator winning the race is fine);
    an existing one must be that table (``require_owned``), except a source table, which the pipeline only reads
    and appends to."""
    if table_exists(spark, identifier):
        if role != "source":
            require_owned(spark, cfg, identifier, role)
        return False
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace_of(identifier)}")
    try:
        created_by = {CREATED_BY_VERSION: __version__}
        spark.sql(create_table_sql(identifier, schema, {**properties, **ownership(cfg, role), **created_by}, partitioned_by))
    except Exception as exc:  # another run created it between the check and the create
        if "already exists" not in str(exc).lower() and "TABLE_OR_VIEW_ALREADY_EXISTS" not in str(exc):
            raise
        return False
    if locally_ordered_by:
        spark.sql(f"ALTER TABLE {identifier} WRITE LOCALLY ORDERED BY {', '.join(f'`{c}`' for c in locally_ordered_by)}")
    return True


def ensure_pipeline_tables(spark: SparkSession, cfg: SummaryConfig, mapped_schema: T.StructType) -> None:
    """Create summary, latest_summary, rejects and control tables when they do not exist yet."""
    schema = summary_schema(cfg, mapped_schema)
    create_table(
        spark,
        cfg,
        "summary",
        cfg.summary_table,
        schema,
        summary_properties(cfg),
        (cfg.month_column,),
        (cfg.key_column,),
    )
    create_table(spark, cfg, "latest_summary", cfg.latest_table, schema, summary_properties(cfg), (), (cfg.key_column,))
    create_table(spark, cfg, "rejects", cfg.rejects_table, rejects_schema(), small_table_properties(cfg))
    create_table(spark, cfg, "control", cfg.control_table, control_schema(), small_table_properties(cfg))
    check_summary_schema(spark, cfg, schema)


def check_summary_schema(spark: SparkSession, cfg: SummaryConfig, expected: T.StructType) -> None:
    """Refuse to write when the config no longer matches the existing tables (a changed config)."""
    for identifier in (cfg.summary_table, cfg.latest_table):
        actual = {f.name: f.dataType for f in spark.table(identifier).schema.fields}
        missing = [f.name for f in expected.fields if f.name not in actual]
        different = [
            f"{f.name} ({actual[f.name].simpleString()} in the table, {f.dataType.simpleString()} from the config)"
            for f in expected.fields
            if f.name in actual and actual[f.name] != f.dataType
        ]
        if missing or different:
            raise SourceDataError(
                f"table {identifier} does not match config {cfg.path}: "
                + (f"missing columns {missing}; " if missing else "")
                + (f"different types: {'; '.join(different)}" if different else "")
                + " -- the config changed after the table was created; migrate the table or use a new destination"
            )


# --- the control table's count of forward months since maintenance (names.MONTHS_SINCE_MAINTENANCE) -------------
def count_forward_months(lock: RunLock, cfg: SummaryConfig, months_applied: int) -> bool:
    """Add to the months-since-maintenance counter (as the lock is released); return whether maintenance is due.

    Only a lock holder changes the counter, so the value seen when the lock was taken is current.
    """
    count = int(lock.properties.get(MONTHS_SINCE_MAINTENANCE, "0") or 0) + months_applied
    lock.set_at_release({MONTHS_SINCE_MAINTENANCE: str(count)})
    return count >= cfg.performance.snapshot_interval


def reset_forward_months(spark: SparkSession, cfg: SummaryConfig) -> None:
    """Set the counter back to 0 (maintenance ran): one commit, none when it is 0 already."""
    update_properties(
        spark,
        cfg.control_table,
        lambda p: None if p.get(MONTHS_SINCE_MAINTENANCE, "0") == "0" else {MONTHS_SINCE_MAINTENANCE: "0"},
    )
