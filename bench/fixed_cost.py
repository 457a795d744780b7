"""The fixed cost of a small stage, next to Spark's own start-up, timed in the same run.

A small run (a forward month of a few hundred accounts, the ingest of one small
file) should cost little more than ``spark-submit`` of a one-line PySpark job:
that is the floor every stage pays. Each measurement is one fresh
``spark-submit``, as Airflow runs a stage, on the example config
(``include/configs/summary_config.json``) in a throw-away warehouse; the
figures are medians of ``repeats`` runs.

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
    """Medians (s) of: a bare spark-submit, --mode ingest of one month's file, --mode forward of one month, and floors."""
    with tempfile.TemporaryDirectory(prefix="bench-fixed-cost-") as tmp:
        base = Path(tmp)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "SUMMARY_WAREHOUSE": str(base / "warehouse"),
        }
        config = base / "summary_config.json"
        config.write_text((ROOT / "include" / "configs" / "summary_config.json").read_text().replace("local.db.", "local.bench."))
        hello = base / "hello.py"
        hello.write_text(HELLO)
        iceberg_floor = base / "iceberg_floor.py"
        iceberg_floor.write_text(ICEBERG_FLOOR)
        forward_floor, floor_copies = base / "forward_floor.py", base / "floor_copies.py"
        forward_floor.write_text(FORWARD_FLOOR)
        floor_copies.write_text(FLOOR_COPIES)
        ingest_floor = base / "ingest_floor.py"
        ingest_floor.write_text(INGEST_FLOOR)
        counts = generate(base / "source", accounts, FIRST_MONTH, repeats + 1, seed=7)
        months = [add_months(FIRST_MONTH, i) for i in range(repeats + 1)]
        stage = [SPARK_SUBMIT, str(ROOT / "spark_jobs" / "summary_pipeline.py"), "--config", str(config)]

        def source(month: str) -> str:
            return str(base / "source" / f"accounts_all_{month}.parquet")

        _timed([*stage, "--mode", "ingest", "--path", source(months[0])], env)  # the tables exist from here on
        _timed([*stage, "--mode", "initial", "--start-month", months[0], "--end-month", months[0]], env)
        _timed([SPARK_SUBMIT, str(floor_copies), str(config)], env)
        bare, floor, small_ingest_floor, ingest, forward, small_forward_floor = [], [], [], [], [], []
        for month in months[1:]:  # interleaved, so a noisy minute on a shared machine hits all six alike
            bare.append(_timed([SPARK_SUBMIT, str(hello)], env))
            floor.append(_timed([SPARK_SUBMIT, str(iceberg_floor), str(config)], env))
            small_ingest_floor.append(_timed([SPARK_SUBMIT, str(ingest_floor), str(config), source(month)], env))
            ingest.append(_timed([*stage, "--mode", "ingest", "--path", source(month)], env))
            small_forward_floor.append(_timed([SPARK_SUBMIT, str(forward_floor), str(config), month], env))
            forward.append(_timed([*stage, "--mode", "forward", "--start-month", month], env))
    result = {
        "accounts": accounts,
        "records_per_month": round(statistics.median(counts.values())),
        "repeats": repeats,
        "bare_s": statistics.median(bare),
        "iceberg_floor_s": statistics.median(floor),
        "ingest_floor_s": statistics.median(small_ingest_floor),
        "ingest_s": statistics.median(ingest),
        "forward_s": statistics.median(forward),
        "forward_floor_s": statistics.median(small_forward_floor),
        "runs": {
            "bare": bare, "iceberg_floor": floor, "ingest_floor": small_ingest_floor, "ingest": ingest, "forward": forward,
            "forward_floor": small_forward_floor,
        },
    }  # fmt: skip
    result["iceberg_floor_vs_bare"] = round(result["iceberg_floor_s"] / result["bare_s"], 2)
    result["ingest_floor_vs_bare"] = round(result["ingest_floor_s"] / result["bare_s"], 2)
    result["ingest_vs_bare"] = round(result["ingest_s"] / result["bare_s"], 2)
    result["forward_vs_bare"] = round(result["forward_s"] / result["bare_s"], 2)
    result["forward_floor_vs_bare"] = round(result["forward_floor_s"] / result["bare_s"], 2)
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        "| run (one spark-submit each) | median (s) | x bare | runs (s) |",
        "|---|---|---|---|",
        f"| bare `spark-submit` of a one-line PySpark job | {result['bare_s']} | 1.0x | {result['runs']['bare']} |",
        f"| floor: the project's Iceberg session, one append and one read of a one-row table | {result['iceberg_floor_s']} | "
        f"{result['iceberg_floor_vs_bare']}x | {result['runs']['iceberg_floor']} |",
        f"| floor of an ingest: read the file, append its records to a source-shaped table in one commit | "
        f"{result['ingest_floor_s']} | {result['ingest_floor_vs_bare']}x | {result['runs']['ingest_floor']} |",
        f"| `--mode ingest` of one file ({result['records_per_month']:,} records) | {result['ingest_s']} | "
        f"{result['ingest_vs_bare']}x | {result['runs']['ingest']} |",
        f"| floor of a forward month: read the month and latest_summary, join, append and overwrite "
        f"({result['accounts']:,} accounts) | {result['forward_floor_s']} | {result['forward_floor_vs_bare']}x | "
        f"{result['runs']['forward_floor']} |",
        f"| `--mode forward` of one month ({result['accounts']:,} accounts) | {result['forward_s']} | "
        f"{result['forward_vs_bare']}x | {result['runs']['forward']} |",
    ]
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
