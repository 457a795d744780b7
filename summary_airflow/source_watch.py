"""How the backfill DAG learns of source records no backfill has applied: the source Asset's watcher and the sensor.

The watcher (``airflow.watch_source``, the default) polls the source table's
snapshots in the triggerer and turns each new unapplied one into an event of
the source Asset, so a writer outside Airflow starts a backfill run within a
poll rather than at the next scheduled run. The sensor checks once at the start
of every run; with the watcher off it waits, deferred, until records arrive.
Both poll every few seconds, so they read only Iceberg metadata through
PyIceberg (``metadata.py``): importing this module must not import Spark.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from spark_jobs.names import WAREHOUSE_ENV
from summary_airflow.metadata import unapplied_source_snapshot

log = logging.getLogger(__name__)


class NewSourceRecordsTrigger(BaseTrigger):
    """Fires once the source table has records no backfill has applied (runs in the triggerer)."""

    def __init__(self, config_path: str, poke_seconds: float = 60, warehouse: str | None = None) -> None:
        super().__init__()
        self.config_path, self.poke_seconds, self.warehouse = config_path, poke_seconds, warehouse

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "summary_airflow.source_watch.NewSourceRecordsTrigger",
            {"config_path": self.config_path, "poke_seconds": self.poke_seconds, "warehouse": self.warehouse},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            snapshot = await asyncio.to_thread(unapplied_source_snapshot, self.config_path, self.warehouse)
            if snapshot is not None:
                yield TriggerEvent({"source_snapshot": snapshot})
                return
            await asyncio.sleep(self.poke_seconds)


class SourceSnapshotWatcher(BaseEventTrigger):
    """The source Asset's watcher: one event for each source snapshot the config has not applied (in the triggerer).

    It runs as long as the backfill DAG is unpaused. A snapshot is announced
    once per watcher: a restarted triggerer announces the current one again if
    it is still unapplied, and that run's sensor skips if another run applied it
    meanwhile. A catalog it cannot read is logged and asked again at the next
    poll: the watcher must outlive an outage, and the scheduled run's sensor
    fails on the same error where it is seen.
    """

    def __init__(self, config_path: str, poke_seconds: float = 60) -> None:
        super().__init__()
        self.config_path, self.poke_seconds = config_path, poke_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # No warehouse here: these kwargs are written when the DAG is parsed and identify the watcher; the
        # triggerer's own SUMMARY_WAREHOUSE applies when it polls.
        return (
            "summary_airflow.source_watch.SourceSnapshotWatcher",
            {"config_path": self.config_path, "poke_seconds": self.poke_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        announced: int | None = None
        while True:
            try:
                snapshot = await asyncio.to_thread(unapplied_source_snapshot, self.config_path, os.environ.get(WAREHOUSE_ENV))
            except Exception:  # logged with its traceback, and asked again
                log.exception("cannot read the source snapshots of %s; asking again in %s s", self.config_path, self.poke_seconds)
                snapshot = None
            if snapshot is not None and snapshot != announced:
                announced = snapshot
                yield TriggerEvent({"source_snapshot": snapshot, "config": self.config_path})
            await asyncio.sleep(self.poke_seconds)


class NewSourceRecordsSensor(BaseSensorOperator):
    """Pass when the source has records not yet applied, at once for a manual filtered or month-limited run.

    With ``wait`` off (the source's watcher starts the runs) nothing new means
    the task is skipped at once, and the rest of the run with it. With ``wait``
    on, it defers until records arrive, and nothing new before the timeout skips
    it. Anything else, a trigger that cannot load or a catalog that cannot be
    read, fails the task so that it is seen; Airflow's ``soft_fail`` would skip
    those too, silently.
    """

    ui_color = "#c7e9c0"

    def __init__(
        self,
        *,
        config_path: str | Path,
        poke_seconds: float = 60,
        wait: bool = True,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poke_seconds)
        super().__init__(**kwargs)
        self.config_path, self.poke_seconds, self.wait, self.deferrable = str(config_path), poke_seconds, wait, deferrable

    def _explicit_batch(self, context: Context) -> bool:
        params = context.get("params") or {}
        return any(params.get(k) for k in ("backfill_filter", "start_month", "end_month"))

    def poke(self, context: Context) -> bool:
        if self._explicit_batch(context):
            return True
        snapshot = unapplied_source_snapshot(self.config_path, os.environ.get(WAREHOUSE_ENV))
        if snapshot is not None:
            self.log.info("source snapshot %s has records no backfill has applied", snapshot)
        return snapshot is not None

    def execute(self, context: Context) -> Any:
        if self.poke(context):
            return None
        if not self.wait:
            raise AirflowSkipException(
                "nothing to apply: every source snapshot is applied; the source's watcher starts a run when one is not"
            )
        if not self.deferrable:
            with _timeout_skips(self.timeout):
                return super().execute(context)  # poke in the worker until timeout
        self.defer(
            trigger=NewSourceRecordsTrigger(self.config_path, self.poke_seconds, os.environ.get(WAREHOUSE_ENV)),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        with _timeout_skips(self.timeout):
            return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
        self.log.info("new source records: %s", event)
        return event


@contextlib.contextmanager
def _timeout_skips(timeout: float) -> Iterator[None]:
    try:
        yield
    except AirflowSensorTimeout as exc:
        raise AirflowSkipException(f"no source records to apply arrived within {timeout:.0f} s") from exc
