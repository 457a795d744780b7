"""Command line: v4's flags, plus the stages this pipeline adds. One process runs one stage.

    spark-submit spark_jobs/summary_pipeline.py --config CFG --mode MODE [options]

Every run prints a one-line JSON report as the last line of its standard
output (``--report-file F`` writes it too) and exits 0 on success, 2 on an
error of input or usage (config, files, arguments, a filter), refused before
the run lock is taken, 3 when ``--mode check`` finds rows that break the table
rules, 4 when another run holds the tables' lock (retry later), and 1 on
anything else (retry: every stage is safe to run again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from spark_jobs.errors import ConcurrentRunError, ConfigError, PipelineError, RuleViolations, UsageError
from spark_jobs.months import is_valid_month, month_range
from spark_jobs.names import (
    BACKFILL,
    BATCH_TIME_LIMIT_SECONDS,
    CASE_I,
    CASE_II,
    CASE_III,
    CHECK,
    CLASSIFY,
    DESCRIBE,
    DRY_RUN_STAGES,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_LOCK_HELD,
    EXIT_OK,
    EXIT_RULES_BROKEN,
    FILTER_STAGES,
    FORWARD,
    INGEST,
    INGEST_ROOTS_ENV,
    INITIAL,
    LOCK_WAIT_SECONDS,
    MAINTENANCE,
    MONTH_RANGE_STAGES,
    REBUILD_LATEST,
    STAGES,
    WAREHOUSE_ENV,
    application_name,
)
from spark_jobs.report import RunReport

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class ArgvError(UsageError):
    """argparse refused the command line (an unknown option, a missing value, a bad choice)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Raised rather than argparse's bare exit 2, so main() still writes a report saying so: without one the
        # Airflow task would take the exit for a crash and retry the same refused command line.
        self.print_usage(sys.stderr)
        raise ArgvError(f"{self.prog}: error: {message}")


def _report_target(argv: Sequence[str] | None) -> tuple[str, str, str | None]:
    """(mode, config, report file) of a command line argparse refused, as far as they can be read from it."""
    lenient = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for flag in ("--mode", "--config", "--report-file"):
        lenient.add_argument(flag)
    try:
        known, _ = lenient.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):
        return "unknown", "", None
    return str(known.mode or "unknown"), str(known.config or ""), known.report_file


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; a refused one raises ``ArgvError`` (exit code 2 in ``main``)."""
    parser = _Parser(
        prog="summary_pipeline.py",
        description="Account-summary pipeline: keeps Iceberg summary and latest_summary tables with rolling history arrays.",
    )
    parser.add_argument("--config", required=True, help="path to the summary config JSON")
    parser.add_argument("--mode", choices=STAGES, default=FORWARD, help=f"stage to run (default: {FORWARD})")
    parser.add_argument("--start-month", help="first month, YYYY-MM (initial/forward: default this month; backfill: optional)")
    parser.add_argument(
        "--end-month", help="last month, YYYY-MM (default: the start month; check: the newest month, when only --start-month)"
    )
    parser.add_argument("--backfill-filter", help="backfill/classify: one boolean expression over the source columns")
    parser.add_argument("--run-id", help="case-i/case-ii/case-iii: the classification to apply (printed by classify)")
    parser.add_argument(
        "--path",
        nargs="+",
        action="extend",
        help="ingest: Parquet or CSV file(s), directories or globs (repeatable: --path=A --path=B); under "
        f"airflow.landing_dir and ${INGEST_ROOTS_ENV} when either is set",
    )
    parser.add_argument("--dry-run", action="store_true", help="compute and report what would change; write nothing")
    parser.add_argument(
        "--warehouse", help=f"warehouse directory of the embedded catalog (default: ${WAREHOUSE_ENV} or ./warehouse)"
    )
    parser.add_argument("--report-file", help="also write the JSON report to this file")
    parser.add_argument(
        "--lock-wait-seconds",
        type=int,
        default=LOCK_WAIT_SECONDS,
        help=f"how long to wait for a concurrent run (default {LOCK_WAIT_SECONDS})",
    )
    parser.add_argument(
        "--batch-time-limit",
        type=int,
        default=BATCH_TIME_LIMIT_SECONDS,
        help=f"backfill/classify with a filter: seconds the filtered batch may take while holding the lock "
        f"(default {BATCH_TIME_LIMIT_SECONDS})",
    )
    return parser.parse_args(argv)


def months_from_args(args: argparse.Namespace) -> list[str]:
    start = args.start_month or dt.date.today().strftime("%Y-%m")
    end = args.end_month or start
    for flag, value in (("--start-month", start), ("--end-month", end)):
        if not is_valid_month(value):
            raise UsageError(f"{flag} {value!r} is not a YYYY-MM month")
    try:
        return month_range(start, end)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_months(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """``check``'s scope: no month flag checks the whole table; ``--start-month`` alone, from there to the newest month."""
    if args.end_month and not args.start_month:
        raise UsageError("--mode check takes --end-month only with --start-month")
    for flag, value in (("--start-month", args.start_month), ("--end-month", args.end_month)):
        if value is not None and not is_valid_month(value):
            raise UsageError(f"{flag} {value!r} is not a YYYY-MM month")
    if args.end_month and args.end_month < args.start_month:
        raise UsageError(f"--end-month {args.end_month} is before --start-month {args.start_month}")
    return args.start_month, args.end_month


def new_run_id(mode: str) -> str:
    return f"{mode}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def run(args: argparse.Namespace, report: RunReport) -> SparkSession:
    """Load the config, start Spark, run the stage. Returns the SparkSession (for the caller to stop)."""
    from spark_jobs.catalogs import same_table_problems
    from spark_jobs.config import load_config
    from spark_jobs.storage.session import build_session, warehouse_location
    from spark_jobs.storage.source_checks import spark_expression_problems

    cfg = load_config(args.config)
    same_tables = same_table_problems(cfg)
    if same_tables:
        raise ConfigError(cfg.path, same_tables)
    months = None
    if args.mode == CHECK:
        check_scope = check_months(args)
    elif args.mode in MONTH_RANGE_STAGES or args.start_month or args.end_month:
        months = months_from_args(args)
    if args.mode == INGEST and not args.path:
        raise UsageError("--mode ingest needs --path FILE [FILE ...]")
    if args.dry_run and args.mode not in DRY_RUN_STAGES:
        raise UsageError(f"--dry-run applies to {', '.join(DRY_RUN_STAGES)}, not {args.mode}")
    if args.backfill_filter and args.mode not in FILTER_STAGES:
        raise UsageError(f"--backfill-filter applies to backfill and classify, not {args.mode}")
    spark = build_session(cfg, warehouse_location(cfg, args.warehouse), app_name=application_name(cfg.name, args.mode))
    announce_spark_application(spark, report)
    try:
        problems = spark_expression_problems(spark, cfg)
        if problems:
            raise ConfigError(cfg.path, problems)
        if args.mode == INGEST:
            from spark_jobs.stages.ingest import ingest

            ingest(spark, cfg, args.path, report)
        elif args.mode in (INITIAL, FORWARD):
            from spark_jobs.stages.forward import run_months

            run_months(
                spark,
                cfg,
                months,  # type: ignore[arg-type]  # set for every MONTH_RANGE_STAGES mode
                report,
                one_batch=args.mode == INITIAL,
                dry_run=args.dry_run,
                lock_wait_seconds=args.lock_wait_seconds,
            )
        elif args.mode in (BACKFILL, CLASSIFY):
            from spark_jobs.stages.backfill import run_backfill, run_classify

            stage = run_backfill if args.mode == BACKFILL else run_classify
            stage(spark, cfg, report, args.backfill_filter, months, args.dry_run, args.lock_wait_seconds, args.batch_time_limit)
        elif args.mode in (CASE_I, CASE_II, CASE_III):
            from spark_jobs.stages.backfill import run_case

            run_case(spark, cfg, report, args.mode, args.run_id, args.lock_wait_seconds)
        elif args.mode == MAINTENANCE:
            from spark_jobs.stages.maintenance import maintain

            maintain(spark, cfg, report, args.lock_wait_seconds)
        elif args.mode == CHECK:
            from spark_jobs.stages.check import check_tables

            check_tables(spark, cfg, report, start_month=check_scope[0], end_month=check_scope[1])
        elif args.mode == REBUILD_LATEST:
            from spark_jobs.stages.rebuild import rebuild_latest

            rebuild_latest(spark, cfg, report, args.lock_wait_seconds)
        elif args.mode == DESCRIBE:
            from spark_jobs.stages.describe import describe

            text, facts = describe(spark, cfg)
            print(text, flush=True)
            report.details.update(facts)
    except BaseException:
        spark.stop()
        raise
    return spark


def announce_spark_application(spark: SparkSession, report: RunReport) -> None:
    """Where to watch this stage (the Spark UI, while it runs) and to read it afterwards (the event log).

    Printed at once, so an Airflow task's log shows it while the stage runs; also kept in the report.
    """
    context = spark.sparkContext
    event_log = None
    try:  # the path Spark writes to (a rolling log is a folder named eventlog_v2_<application>)
        logger = context._jsc.sc().eventLogger()
        event_log = str(logger.get().logWriter().logPath()) if logger.isDefined() else None
    except Exception:  # an internal API of Spark: losing the path must not fail the stage
        log.warning("could not read the event log's path", exc_info=True)
    facts = {"application_id": context.applicationId, "application_name": context.appName, "ui_url": context.uiWebUrl,
             "event_log": event_log}  # fmt: skip
    report.details["spark"] = facts
    ui = facts["ui_url"] or "disabled (spark.ui.enabled)"
    print(
        f"spark application {facts['application_id']}: Spark UI {ui} while this stage runs; "
        f"event log {event_log or 'off (spark.eventLog.enabled)'}",
        flush=True,
    )


def error_summary(exc: BaseException) -> str:
    """One line naming an unexpected error; for a JVM error, the Java exception's own message."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            text = java.toString()
        except Exception:  # the JVM is gone
            text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:1000] if lines else type(exc).__name__


def exit_code_of(exc: PipelineError) -> int:
    """Bad input and broken rules fail for good; a busy lock is worth retrying (names.RETRYABLE_EXIT_CODES)."""
    if isinstance(exc, RuleViolations):
        return EXIT_RULES_BROKEN
    if isinstance(exc, ConcurrentRunError):
        return EXIT_LOCK_HELD
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    # Log lines go to stderr, so the last line of stdout stays the JSON report. py4j logs every connection it
    # closes at INFO: it stays at WARNING, as it was before logging was configured here.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        args = parse_args(argv)
    except ArgvError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        mode, config, report_file = _report_target(argv)
        refused = RunReport(mode=mode, config=config, run_id=new_run_id("usage"))
        refused.finish("failed", str(exc), EXIT_BAD_INPUT)
        return _emit(refused, report_file, EXIT_BAD_INPUT)
    report = RunReport(mode=args.mode, config=args.config, run_id=new_run_id(args.mode), dry_run=args.dry_run)
    spark, code = None, 0
    try:
        spark = run(args, report)
        report.finish("ok", exit_code=EXIT_OK)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = exit_code_of(exc)
        report.finish("failed", str(exc), code)
    except Exception as exc:  # an unexpected failure: keep the traceback for the log
        traceback.print_exc()
        code = EXIT_FAILED
        report.finish("failed", error_summary(exc), code)
    finally:
        if spark is not None:
            spark.stop()
    return _emit(report, args.report_file, code)


def _emit(report: RunReport, report_file: str | None, code: int) -> int:
    line = report.to_json()
    if report_file:
        Path(report_file).write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
