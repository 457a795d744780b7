"""Has the source table appended records that no backfill has applied yet? (without Spark)

The backfill DAG's sensor asks this every few seconds, so it reads only Iceberg
metadata, through PyIceberg, from the catalog the jobs use: the source
table's current snapshot against the mark in the control table's properties.
"""

import asyncio
import datetime as dt
import os
from pathlib import Path

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from spark_jobs.backfill import MARK
from spark_jobs.config import load_config
from spark_jobs.session import catalog_conf, warehouse_location


def pyiceberg_properties(cfg, warehouse, catalog_name):
    """PyIceberg catalog properties equivalent to the Spark conf the jobs use for ``catalog_name``."""
    prefix = f"spark.sql.catalog.{catalog_name}."
    spark = {k[len(prefix) :]: v for k, v in catalog_conf(cfg, warehouse).items() if k.startswith(prefix)}
    kind = spark.pop("type", None)
    properties = {k: v for k, v in spark.items() if not k.startswith("jdbc.") and k != "cache-enabled"}
    if kind == "jdbc":
        uri = spark["uri"]
        if not uri.startswith("jdbc:sqlite:"):
            raise ValueError(f"catalog {catalog_name}: only SQLite JDBC URIs can be read without Spark, not {uri}")
        path = uri[len("jdbc:sqlite:") :]
        properties.update(type="sql", uri=f"sqlite:///{path}")
        if "://" not in properties.get("warehouse", "://"):
            properties["warehouse"] = Path(properties["warehouse"]).as_uri()
    elif kind:
        properties["type"] = kind
    return properties


def _catalog_and_name(cfg, identifier):
    parts = identifier.split(".")
    return (parts[0], ".".join(parts[1:])) if len(parts) == 3 else (cfg.catalog.default, identifier)


def load_table(cfg, warehouse, identifier):
    from pyiceberg.catalog import load_catalog

    catalog_name, name = _catalog_and_name(cfg, identifier)
    return load_catalog(catalog_name, **pyiceberg_properties(cfg, warehouse, catalog_name)).load_table(name)


def unapplied_source_snapshot(config_path, warehouse=None):
    """The source's current snapshot id when it differs from the applied-backfill mark, else None."""
    cfg = load_config(config_path)
    warehouse = warehouse_location(cfg, warehouse)
    try:
        source = load_table(cfg, warehouse, cfg.source_table)
    except Exception as exc:  # no source table yet: nothing to backfill
        if "NoSuchTable" in type(exc).__name__ or "does not exist" in str(exc).lower():
            return None
        raise
    current = source.metadata.current_snapshot_id
    if current is None:
        return None
    try:
        mark = load_table(cfg, warehouse, cfg.control_table).properties.get(MARK)
    except Exception as exc:
        if "NoSuchTable" in type(exc).__name__:
            return current  # the pipeline never ran: everything is new
        raise
    return None if mark == str(current) else current


class NewSourceRecordsTrigger(BaseTrigger):
    """Fires once the source table has records no backfill has applied (runs in the triggerer)."""

    def __init__(self, config_path, poke_seconds=60, warehouse=None):
        super().__init__()
        self.config_path, self.poke_seconds, self.warehouse = config_path, poke_seconds, warehouse

    def serialize(self):
        return (
            "summary_airflow.source_watch.NewSourceRecordsTrigger",
            {"config_path": self.config_path, "poke_seconds": self.poke_seconds, "warehouse": self.warehouse},
        )

    async def run(self):
        while True:
            snapshot = await asyncio.to_thread(unapplied_source_snapshot, self.config_path, self.warehouse)
            if snapshot is not None:
                yield TriggerEvent({"source_snapshot": snapshot})
                return
            await asyncio.sleep(self.poke_seconds)


class NewSourceRecordsSensor(BaseSensorOperator):
    """Wait for appended source records not yet applied; pass at once for a manual filtered or month-limited run."""

    ui_color = "#c7e9c0"

    def __init__(self, *, config_path, poke_seconds=60, deferrable=True, **kwargs):
        kwargs.setdefault("poke_interval", poke_seconds)
        super().__init__(**kwargs)
        self.config_path, self.poke_seconds, self.deferrable = str(config_path), poke_seconds, deferrable

    def _explicit_batch(self, context):
        params = context.get("params") or {}
        return any(params.get(k) for k in ("backfill_filter", "start_month", "end_month"))

    def poke(self, context):
        if self._explicit_batch(context):
            return True
        snapshot = unapplied_source_snapshot(self.config_path, os.environ.get("SUMMARY_WAREHOUSE"))
        if snapshot is not None:
            self.log.info("source snapshot %s has records no backfill has applied", snapshot)
        return snapshot is not None

    def execute(self, context):
        if self.poke(context):
            return None
        if not self.deferrable:
            return super().execute(context)  # poke in the worker until timeout
        self.defer(
            trigger=NewSourceRecordsTrigger(self.config_path, self.poke_seconds, os.environ.get("SUMMARY_WAREHOUSE")),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context, event=None):
        self.log.info("new source records: %s", event)
        return event
