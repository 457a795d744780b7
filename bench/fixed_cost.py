"""The fixed cost of a small stage, next to Spark's own start-up, timed in the same run.

A small run (a forward month of a few hundred accounts, the ingest of one small
file) should cost little more than ``spark-submit`` of a one-line PySpark job:
that is the floor every stage pays. Each measurement is one fresh
``spark-submit``, as Airflow runs a stage, on the example config
(``include/configs/summary_config.json``) in a throw-away warehouse; the
figures are medians of ``repeats`` runs. Every run is timed twice, each time in
its own warehouse: with the driver JVM options a stage task gets (the class
archive of ``spark_jobs/storage/class_archive.py``, when built) and without any,
so the table shows what the archive gives a bare ``spark-submit`` (the floor)
and a stage alike.

    python -m bench.fixed_cost [--repeats 3] [--accounts 300]
"""

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.floors import forward_floor_rows
from spark_jobs.months import add_months
from spark_jobs.sample_data import generate
from spark_jobs.storage.class_archive import driver_java_options

ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
HELLO = "from pyspark.sql import SparkSession\nprint(SparkSession.builder.getOrCreate().range(1).count())\n"
# The least a stage on Iceberg does: the project's session (catalog, Iceberg extensions, jars), one append, one read.
ICEBERG_FLOOR = """import sys
from spark_jobs.config import load_config
from spark_jobs.storage.session import build_session
spark = build_session(load_config(sys.argv[1]))
spark.sql("CREATE TABLE IF NOT EXISTS local.bench.floor (k BIGINT) USING iceberg")
spark.range(1).withColumnRenamed("id", "k").writeTo("local.bench.floor").append()
print(spark.table("local.bench.floor").count())
"""
# The least a forward month does, in a fresh process: the forward floor of bench/floors.py (read the month's
# records and latest_summary's whole rows, join on the key, keep, append to a summary-shaped table, overwrite a
# latest-shaped one), without lock, checks, mapping or recovery bookkeeping. The copies exist beforehand.
FORWARD_FLOOR = """import sys
from pyspark.sql import functions as F
from spark_jobs.config import SummaryConfig, load_config
from spark_jobs.storage.session import build_session
"""
FORWARD_FLOOR += inspect.getsource(forward_floor_rows)  # (the script runs where ``bench`` is not importable)
FORWARD_FLOOR += """
cfg, month = load_config(sys.argv[1]), sys.argv[2]
spark = build_session(cfg)
rows = forward_floor_rows(spark, cfg, month, spark.table(cfg.summary_table).columns).cache()
rows.count()
rows.writeTo(cfg.summary_table + "_floor").option("distribution-mode", "none").append()
rows.writeTo(cfg.latest_table + "_floor").overwrite(F.lit(True))
"""
# The least an ingest does, in a fresh process: read the file and append its records, in the source table's
# columns, to a source-shaped table in one commit; no fit check, lock, mapping, rejects or run report.
INGEST_FLOOR = """import sys
from pyspark.sql import functions as F
from spark_jobs.config import load_config
from spark_jobs.storage.session import build_session
cfg = load_config(sys.argv[1])
spark = build_session(cfg)
table = cfg.source_table + "_floor"
records = spark.read.parquet(sys.argv[2])
aligned = records.select(*[F.col(f.name).cast(f.dataType) for f in spark.table(table).schema.fields])
aligned.writeTo(table).option("distribution-mode", "none").append()
"""
FLOOR_COPIES = """import sys
from spark_jobs.config import load_config
from spark_jobs.storage.session import build_session
cfg = load_config(sys.argv[1])
spark = build_session(cfg)
source_month = cfg.source_column(cfg.month_column)
for table, partition in ((cfg.summary_table, cfg.month_column), (cfg.latest_table, None), (cfg.source_table, source_month)):
    partitioned = f"PARTITIONED BY (`{partition}`)" if partition else ""
    spark.sql(f"CREATE TABLE {table}_floor USING iceberg {partitioned} AS SELECT * FROM {table} WHERE false")
"""
FIRST_MONTH = "2024-01"


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return round(seconds, 2)


def measure(repeats: int = 3, accounts: int = 300) -> dict[str, Any]:
    """Medians (s) of: a bare spark-submit, --mode ingest of one month's file, --mode forward of one month, and floors;
    ``result["without_class_archive"]`` holds the same without the driver's class archive (None when not built)."""
    archive = driver_java_options()
    variants = {"with": archive, "without": ""} if archive else {"without": ""}
    with tempfile.TemporaryDirectory(prefix="bench-fixed-cost-") as tmp:
        base = Path(tmp)
        config = base / "summary_config.json"
        config.write_text((ROOT / "include" / "configs" / "summary_config.json").read_text().replace("local.db.", "local.bench."))
        scripts = {}
        for name, text in (("hello", HELLO), ("iceberg_floor", ICEBERG_FLOOR), ("forward_floor", FORWARD_FLOOR),
                           ("floor_copies", FLOOR_COPIES), ("ingest_floor", INGEST_FLOOR)):  # fmt: skip
            scripts[name] = base / f"{name}.py"
            scripts[name].write_text(text)
        counts = generate(base / "source", accounts, FIRST_MONTH, repeats + 1, seed=7)
        months = [add_months(FIRST_MONTH, i) for i in range(repeats + 1)]

        def source(month: str) -> str:
            return str(base / "source" / f"accounts_all_{month}.parquet")

        def submit(variant: str) -> list[str]:
            options = variants[variant]
            return [SPARK_SUBMIT, *(["--driver-java-options", options] if options else [])]

        envs = {
            variant: {
                **os.environ,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "SUMMARY_WAREHOUSE": str(base / f"warehouse-{variant}"),
            }
            for variant in variants
        }
        stage = [str(ROOT / "spark_jobs" / "summary_pipeline.py"), "--config", str(config)]
        for variant, env in envs.items():  # the tables exist from here on
            _timed([*submit(variant), *stage, "--mode", "ingest", "--path", source(months[0])], env)
            _timed([*submit(variant), *stage, "--mode", "initial", "--start-month", months[0], "--end-month", months[0]], env)
            _timed([*submit(variant), str(scripts["floor_copies"]), str(config)], env)
        runs: dict[str, dict[str, list[float]]] = {variant: {kind: [] for kind in KINDS} for variant in variants}
        for round_, month in enumerate(months[1:]):  # interleaved, so a noisy minute on a shared machine hits all alike
            commands = {
                "bare": [str(scripts["hello"])],
                "iceberg_floor": [str(scripts["iceberg_floor"]), str(config)],
                "ingest_floor": [str(scripts["ingest_floor"]), str(config), source(month)],
                "ingest": [*stage, "--mode", "ingest", "--path", source(month)],
                "forward_floor": [str(scripts["forward_floor"]), str(config), month],
                "forward": [*stage, "--mode", "forward", "--start-month", month],
            }
            order = list(variants)[round_ % len(variants) :] + list(variants)[: round_ % len(variants)]
            for kind, command in commands.items():
                for variant in order:
                    runs[variant][kind].append(_timed([*submit(variant), *command], envs[variant]))
    results = {variant: _medians(runs[variant], accounts, counts, repeats) for variant in variants}
    result = results.get("with", results["without"])
    result["class_archive"] = archive or None
    result["without_class_archive"] = results["without"] if archive else None
    return result


KINDS = ("bare", "iceberg_floor", "ingest_floor", "ingest", "forward_floor", "forward")


def _medians(runs: dict[str, list[float]], accounts: int, counts: dict[str, int], repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "accounts": accounts,
        "records_per_month": round(statistics.median(counts.values())),
        "repeats": repeats,
        **{f"{kind}_s": statistics.median(runs[kind]) for kind in KINDS},
        "runs": runs,
    }
    for kind in KINDS[1:]:
        result[f"{kind}_vs_bare"] = round(result[f"{kind}_s"] / result["bare_s"], 2)
    result["forward_minus_bare_s"] = round(result["forward_s"] - result["bare_s"], 2)
    return result


LABELS = {
    "bare": "bare `spark-submit` of a one-line PySpark job",
    "iceberg_floor": "floor: the project's Iceberg session, one append and one read of a one-row table",
    "ingest_floor": "floor of an ingest: read the file, append its records to a source-shaped table in one commit",
    "ingest": "`--mode ingest` of one file ({records_per_month:,} records)",
    "forward_floor": "floor of a forward month: read the month and latest_summary, join, append and overwrite "
    "({accounts:,} accounts)",
    "forward": "`--mode forward` of one month ({accounts:,} accounts)",
}


def table(result: dict[str, Any]) -> str:
    """One row per run kind; with a built class archive, the same runs without it in the last columns."""
    without = result.get("without_class_archive")
    header = "| run (one spark-submit each) | median (s) | x bare | runs (s) |"
    if without:
        header += " without the class archive (s) | x bare | runs (s) |"
    rows = [header, "|---" * header.count(" |") + "|"]
    for kind in KINDS:
        ratio = "1.0x" if kind == "bare" else f"{result[f'{kind}_vs_bare']}x"
        row = f"| {LABELS[kind].format(**result)} | {result[f'{kind}_s']} | {ratio} | {result['runs'][kind]} |"
        if without:
            ratio = "1.0x" if kind == "bare" else f"{without[f'{kind}_vs_bare']}x"
            row += f" {without[f'{kind}_s']} | {ratio} | {without['runs'][kind]} |"
        rows.append(row)
    rows.append("")
    rows.append(f"A small stage (`--mode forward`, {result['accounts']:,} accounts) minus a bare `spark-submit`: "
                f"{result['forward_minus_bare_s']} s" + (f" ({without['forward_minus_bare_s']} s without the class archive)"
                                                         if without else "") + ".")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=300)
    args = parser.parse_args(argv)
    result = measure(args.repeats, args.accounts)
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
