"""The backfill DAG's sensor: wait, deferred in the triggerer, for source records no backfill has applied.

The trigger asks every few seconds, so it reads only Iceberg metadata through
PyIceberg (``metadata.py``): importing this module must not import Spark.
"""

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from spark_jobs.names import WAREHOUSE_ENV
from summary_airflow.metadata import unapplied_source_snapshot


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


class NewSourceRecordsSensor(BaseSensorOperator):
    """Wait for appended source records not yet applied; pass at once for a manual filtered or month-limited run.

    Nothing new before the timeout is a normal outcome: the task is skipped
    (and the rest of the run with it). Anything else, a trigger that cannot
    load or a catalog that cannot be read, fails the task so that it is seen;
    Airflow's ``soft_fail`` would skip those too, silently.
    """

    ui_color = "#c7e9c0"

    def __init__(self, *, config_path: str | Path, poke_seconds: float = 60, deferrable: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("poke_interval", poke_seconds)
        super().__init__(**kwargs)
        self.config_path, self.poke_seconds, self.deferrable = str(config_path), poke_seconds, deferrable

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
