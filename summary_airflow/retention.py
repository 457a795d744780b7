"""Retention of the files stage tasks leave behind: Spark event logs and run reports, deleted by age.

Each stage task prunes before it starts its Spark job (``SummaryStageOperator.execute``): one listing of each
folder, so it costs little and needs no extra DAG or task. Nothing here follows a symbolic link or deletes
anything outside the folder it is given.

- Event logs are named by Spark's application id (``app-...``, ``local-...``; ``eventlog_v2_<id>/`` folders for
  rolling logs), which does not say which config wrote them: every event log of the folder is pruned by age (other
  files there stay), so the folder is shared and the shortest ``airflow.spark_event_log_retention_days`` of the
  configs writing there applies to all of them. A URI folder (``s3a://...``) is not pruned here: a history server's cleaner
  (``spark.history.fs.cleaner.enabled``, ``.maxAge``, ``.maxNum``) is the tool there.
- Run reports (``settings.report_file_name``) name their DAG, so only the reports of one config's DAGs are pruned,
  with that config's ``airflow.report_retention_days``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from summary_airflow import settings
from summary_airflow.access import DAG_KINDS

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
# Spark's event log names: ``<app id>[_<attempt>][.<codec>][.inprogress]``, or ``eventlog_v2_<app id>...`` folders of
# rolling logs; app ids are ``local-...`` (local), ``app-...`` (standalone), ``application_...`` (YARN), ``spark-...``
# (Kubernetes). Anything else in the folder is not an event log and stays.
EVENT_LOG_NAME = re.compile(r"^(?:eventlog_v2_)?(?:local-|app-|application_|spark-)[A-Za-z0-9_.-]+$")


def local_folder(folder: str | os.PathLike[str]) -> Path | None:
    """The local path of ``folder`` (a path or a ``file:`` URI); None for any other URI (s3a://, hdfs://, ...)."""
    text = os.fspath(folder)
    if text.startswith("file:"):
        return Path(unquote(urlparse(text).path))
    if "://" in text:
        return None
    return Path(text)


def _newest_mtime(entry: os.DirEntry[str]) -> float:
    """When ``entry`` last changed: its own mtime, or for a folder the newest mtime of the files in it (a rolling
    event log's folder gets new files while its app runs). Links are not followed."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        for root, dirs, files in os.walk(entry.path, followlinks=False):
            for name in (*dirs, *files):
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue
    return newest


def prune_older_than(
    folder: str | os.PathLike[str],
    days: int,
    now: float | None = None,
    keep_name: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Delete the entries directly in ``folder`` that have not changed for more than ``days`` days; the deleted ones.

    ``now``: seconds since the epoch (default: the clock). ``keep_name(name)``: True for a name that is not ours to
    prune (it stays whatever its age). A symbolic link is never followed nor deleted, so whatever it points to is
    untouched; a folder is deleted with everything in it (links inside are removed, not followed). A URI folder
    other than ``file:`` is skipped with a log line; a missing folder is nothing to do. A file that cannot be deleted
    is logged and skipped: pruning never fails the caller.
    """
    if days < 1:
        raise ValueError(f"retention must be at least one day, not {days}")
    path = local_folder(folder)
    if path is None:
        log.info(
            "not pruning %s: not a local folder (a history server's spark.history.fs.cleaner.* prunes event logs there)",
            folder,
        )
        return []
    try:
        root_stat = os.lstat(path)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(root_stat.st_mode):  # a link or a file where the folder should be: not ours to walk
        log.warning("not pruning %s: not a folder (a symbolic link is not followed)", path)
        return []
    cutoff = (time.time() if now is None else now) - days * DAY_SECONDS
    removed: list[Path] = []
    with os.scandir(path) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink() or (keep_name is not None and keep_name(entry.name)):
                continue
            try:
                if _newest_mtime(entry) >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # removes links inside without following them
                else:
                    os.unlink(entry.path)
            except OSError as exc:
                log.warning("could not prune %s: %s", entry.path, exc)
                continue
            removed.append(Path(entry.path))
    return removed


def prune_event_logs(folder: str | os.PathLike[str], days: int, now: float | None = None) -> list[Path]:
    """Delete the Spark event logs (files and rolling-log folders) in ``folder`` older than ``days`` days."""
    return prune_older_than(folder, days, now, keep_name=lambda name: not EVENT_LOG_NAME.match(name))


def prune_reports(folder: str | os.PathLike[str], config_name: str, days: int, now: float | None = None) -> list[Path]:
    """Delete the run reports of ``config_name``'s DAGs older than ``days`` days; every other file stays."""
    ours = {settings.dag_id(config_name, kind) for kind in DAG_KINDS}  # exact ids: one name may prefix another's

    def not_ours(name: str) -> bool:
        parsed = settings.parse_report_file_name(name)
        return parsed is None or parsed[0] not in ours

    return prune_older_than(folder, days, now, keep_name=not_ours)


def prune_stage_leftovers(
    config_name: str,
    event_log_days: int,
    report_days: int,
    event_log_folder: str | None,
    report_folder: Path,
    now: float | None = None,
    log_line: Callable[[str], object] = log.info,
) -> list[Path]:
    """What a stage task prunes before it runs: the event-log folder (when event logs are on) and its config's
    reports. Never raises: a stage must not fail because an old file could not go."""
    removed: list[Path] = []
    jobs: Iterable[tuple[str, Callable[[], list[Path]]]] = (
        ("event logs", lambda: prune_event_logs(event_log_folder, event_log_days, now) if event_log_folder else []),
        ("run reports", lambda: prune_reports(report_folder, config_name, report_days, now)),
    )
    for what, job in jobs:
        try:
            gone = job()
        except Exception as exc:  # never fail the stage over housekeeping
            log.warning("could not prune old %s: %s: %s", what, type(exc).__name__, exc)
            continue
        if gone:
            log_line(f"pruned {len(gone)} old {what}: {', '.join(p.name for p in gone[:5])}{' ...' if len(gone) > 5 else ''}")
        removed.extend(gone)
    return removed
