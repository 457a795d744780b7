"""``--mode ingest``: append Parquet or CSV files to the source table, refusing files that do not fit.

The first file creates the source table (partitioned by the month column, so
each forward run reads one partition) once every source column the config
names is present. Later files must have exactly the table's columns with the
same types (or a lossless widening of them); anything else is refused with the
file and the columns named, before anything is written. Each file is one
Iceberg append tagged with the file's SHA-256, so ingesting a file again (a
retried task) is a no-op. Records that will be rejected are written to the
rejects table at once: a record with a malformed month is in no month's batch.
"""

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.config import SummaryConfig
from spark_jobs.core.mapping import map_records, rejected_records
from spark_jobs.core.month_columns import is_month_col
from spark_jobs.errors import SourceDataError, first_line
from spark_jobs.ingest_paths import FORMATS, expand_paths, ingest_roots
from spark_jobs.names import INGESTED_FILE_PROPERTY, INGESTED_SHA_PROPERTY
from spark_jobs.report import RunReport
from spark_jobs.storage.iceberg import java_table
from spark_jobs.storage.tables import common_properties, create_table, ensure_pipeline_tables, table_exists
from spark_jobs.storage.writers import append_source, write_rejects

# (file type, table type) pairs that convert without losing anything.
_WIDENINGS = {
    ("int", "bigint"),
    ("smallint", "int"),
    ("smallint", "bigint"),
    ("tinyint", "int"),
    ("tinyint", "bigint"),
    ("float", "double"),
    ("timestamp_ntz", "timestamp"),
    ("timestamp", "timestamp_ntz"),
    ("int", "double"),
}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_file(spark: SparkSession, path: Path, table_schema: T.StructType | None = None) -> DataFrame:
    if FORMATS[path.suffix.lower()] == "parquet":
        return spark.read.parquet(str(path))
    header = spark.read.option("header", True).csv(str(path)).columns
    if not header:
        raise SourceDataError(f"{path}: empty CSV file (no header)")
    reader = spark.read.option("header", True).option("mode", "FAILFAST")
    if table_schema is not None and set(header) == set(table_schema.fieldNames()):
        by_name = {f.name: f for f in table_schema.fields}
        return reader.schema(T.StructType([by_name[c] for c in header])).csv(str(path))
    return reader.option("inferSchema", True).csv(str(path))


def check_first_file(cfg: SummaryConfig, path: Path, schema: T.StructType) -> None:
    names = set(schema.fieldNames())
    missing = [src for src in cfg.columns if src not in names]
    if missing:
        raise SourceDataError(
            f"{path}: lacks source column(s) {missing} named in `columns` of {cfg.path}; the source table was not created"
        )
    types = {f.name: f.dataType for f in schema.fields}
    version = types[cfg.source_column(cfg.version_column)]
    if not isinstance(version, (T.TimestampType, T.TimestampNTZType, T.DateType, T.IntegralType, T.DecimalType)):
        raise SourceDataError(
            f"{path}: version column {cfg.source_column(cfg.version_column)!r} is {version.simpleString()}; "
            "a timestamp, date or whole number is needed to order versions"
        )


def fit_problems(schema: T.StructType, table_schema: T.StructType) -> list[str]:
    """Why a file's columns do not fit the source table (empty when they do)."""
    file_types = {f.name: f.dataType.simpleString() for f in schema.fields}
    table_types = {f.name: f.dataType.simpleString() for f in table_schema.fields}
    problems = []
    missing = [c for c in table_types if c not in file_types]
    extra = sum(1 for c in file_types if c not in table_types)
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:  # counted, never named: the names are the file's first line, which may be anything the path reached
        problems.append(f"{extra} extra column(s) not in the source table")
    for name, file_type in file_types.items():
        table_type = table_types.get(name)
        if table_type and file_type != table_type and (file_type, table_type) not in _WIDENINGS:
            problems.append(f"column {name!r} is {file_type} but the source table has {table_type}")
    return problems


def create_source_table(spark: SparkSession, cfg: SummaryConfig, schema: T.StructType) -> T.StructType:
    """The source table, partitioned by the month column so a forward run reads one partition."""
    properties = {**common_properties(cfg), "write.distribution-mode": "hash"}
    create_table(spark, cfg, "source", cfg.source_table, schema, properties, (cfg.source_column(cfg.month_column),))
    return spark.table(cfg.source_table).schema


def already_ingested(spark: SparkSession, cfg: SummaryConfig, sha: str) -> int | None:
    """The snapshot that appended a file with this SHA-256, if any (kept until that snapshot expires)."""
    for snapshot in java_table(spark, cfg.source_table).snapshots():
        if dict(snapshot.summary()).get(INGESTED_SHA_PROPERTY) == sha:
            return snapshot.snapshotId()
    return None


def ingest(spark: SparkSession, cfg: SummaryConfig, path_args: Iterable[str], report: RunReport) -> None:
    """``path_args`` must lie under ``airflow.landing_dir`` and ``$SUMMARY_INGEST_ROOTS`` (see ``ingest_paths``)."""
    files = expand_paths(path_args, ingest_roots(cfg.airflow.landing_dir))
    ingested = []
    for path in files:
        exists = table_exists(spark, cfg.source_table)
        table_schema = spark.table(cfg.source_table).schema if exists else None
        try:
            df = read_file(spark, path, table_schema)
        except SourceDataError:
            raise
        except Exception as exc:  # not Parquet at all, truncated, unreadable
            raise SourceDataError(f"{path}: cannot be read as {FORMATS[path.suffix.lower()]}: {first_line(exc)}") from None
        if not df.columns:
            raise SourceDataError(f"{path}: the file has no columns")
        month_source = cfg.source_column(cfg.month_column)
        if not exists:
            check_first_file(cfg, path, df.schema)
            df = df.withColumn(month_source, F.col(month_source).cast("string"))
            table_schema = create_source_table(spark, cfg, df.schema)
        problems = fit_problems(df.schema, table_schema)  # type: ignore[arg-type]  # set above when the table was absent
        if problems:
            raise SourceDataError(f"{path}: refused, it does not fit {cfg.source_table}: " + "; ".join(problems))
        sha = file_sha256(path)
        previous = already_ingested(spark, cfg, sha)
        if previous is not None:
            ingested.append({"file": str(path), "records": 0, "skipped": f"already ingested in snapshot {previous}"})
            continue
        aligned = df.select(*[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in table_schema.fields]).persist()  # type: ignore[union-attr]
        try:
            has_month = is_month_col(F.col(f"`{month_source}`"))
            try:
                counts = cast(Row, aligned.agg(F.count(F.lit(1)).alias("records"), F.count_if(has_month).alias("kept")).first())
            except Exception as exc:  # a malformed CSV row, a corrupt Parquet page: nothing was written
                raise SourceDataError(f"{path}: refused, its records cannot be read: {first_line(exc)}") from None
            records, kept = counts["records"], counts["kept"]
            # Rejects first: a retry after a crash in between skips the file (its SHA is in the source's
            # snapshot), so the source append must come last. The MERGE makes repeating it harmless.
            mapped = map_records(aligned, cfg)
            ensure_pipeline_tables(spark, cfg, mapped.schema)
            rejects = rejected_records(mapped, cfg, report.run_id).persist()
            rejected = rejects.count()
            if rejected:
                write_rejects(spark, cfg, rejects)
            rejects.unpersist()
            # A record without a YYYY-MM month belongs to no month's batch and would be a partition of its own
            # (a very long value cannot even be one): it is kept in the rejects table only, as its JSON.
            file_properties = {INGESTED_FILE_PROPERTY: os.path.abspath(path), INGESTED_SHA_PROPERTY: sha}
            append_source(cfg, aligned.where(has_month), file_properties)
        finally:
            aligned.unpersist()
        report.records_read += records
        report.records_rejected += rejected
        report.rows_written["source"] += kept
        report.rows_written["rejects"] += rejected
        ingested.append({"file": str(path), "records": records, "rejected": rejected, "without_month": records - kept})
    report.details["files"] = ingested
