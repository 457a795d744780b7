"""Running stages the way users and Airflow do: Parquet files in, real spark-submit, the JSON report out."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support import model_config

ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
ARROW_SCHEMA = pa.schema(
    [
        ("acct_id", pa.int64()),
        ("rpt_mo", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("bal", pa.int32()),
        ("dpd", pa.int32()),
        ("acct_type", pa.string()),
        ("open_dt", pa.date32()),
        ("status", pa.string()),
        ("acct_dt", pa.date32()),
        ("member", pa.string()),
    ]
)


def write_parquet(path, rows, schema=ARROW_SCHEMA):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows], schema=schema), path)
    return path


def write_config(tmp_path, namespace, **overrides):
    path = tmp_path / f"{namespace}.json"
    path.write_text(json.dumps(model_config(namespace, **overrides)))
    return path


def submit(config, warehouse, *args, runner=None, env=None, check=True):
    """Run one stage the way the README shows; returns (exit code, parsed last stdout line, all output).

    spark-submit merges the Python process's stderr into its stdout, so messages are looked for in both.
    """
    command = (runner or [SPARK_SUBMIT]) + [str(ROOT / "spark_jobs" / "summary_pipeline.py"), "--config", str(config), *args]
    result = subprocess.run(
        command,
        cwd=ROOT,
        # A spark-submit JVM in a test lives seconds: the C1 compiler alone starts it faster.
        env={**os.environ, "SUMMARY_WAREHOUSE": str(warehouse), "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    if check:
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}"
    return result.returncode, report, result.stdout + result.stderr


def submit_and_kill(config, warehouse, *args, after_seconds=None, crash_at=None):
    """Start a stage and kill it: SIGKILL to its whole process tree after ``after_seconds``, or at a named
    crash point (``spark_jobs.faults``). Returns (killed before it finished, seconds it ran)."""
    command = [SPARK_SUBMIT, str(ROOT / "spark_jobs" / "summary_pipeline.py"), "--config", str(config), *args]
    env = {**os.environ, "SUMMARY_WAREHOUSE": str(warehouse), "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1"}
    if crash_at:
        env["SUMMARY_PIPELINE_CRASH_AT"] = crash_at
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        process.wait(timeout=600 if crash_at else after_seconds)
        killed = crash_at is not None and process.returncode != 0
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        killed = True
    try:  # whatever the stage started (the Python driver under the JVM) goes with it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return killed, time.monotonic() - started
