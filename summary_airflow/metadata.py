"""What the pipeline's Iceberg tables say, read from their metadata with PyIceberg: no Spark, no data files.

The backfill sensor's trigger (in the triggerer) and the status API (in the
api-server) use this; both run where Spark is neither wanted nor installed.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_jobs.catalogs import pyiceberg_properties, split_identifier, warehouse_location
from spark_jobs.config import SummaryConfig, load_config
from spark_jobs.names import BACKFILL_MARK, CATALOG_TIMEOUT_ENV, MONTHS_SINCE_MAINTENANCE
from spark_jobs.storage.runlock import lock_state
from summary_airflow.settings import seconds_from_env

if TYPE_CHECKING:
    from pyiceberg.table import Table

# Every HTTP request to a REST catalog, and every object-store request, gives up after this many seconds: these
# reads run in the api-server and the triggerer, where a catalog that never answers must not hold a thread for ever.
DEFAULT_CATALOG_TIMEOUT_SECONDS = 10.0


def catalog_timeout_seconds() -> float:
    return seconds_from_env(CATALOG_TIMEOUT_ENV, DEFAULT_CATALOG_TIMEOUT_SECONDS, most=600)


def bounded_properties(properties: dict[str, str], seconds: float) -> dict[str, str]:
    """PyIceberg properties whose catalog and file IO time out: PyIceberg's REST client has no timeout setting, so
    a REST catalog is loaded as ``BoundedRestCatalog``; S3 reads take PyIceberg's own timeout properties."""
    bounded = dict(properties)
    if bounded.get("type") == "rest":
        del bounded["type"]
        bounded["py-catalog-impl"] = f"{__name__}.BoundedRestCatalog"
        bounded[REQUEST_TIMEOUT] = str(seconds)
    bounded.setdefault("s3.connect-timeout", str(seconds))
    bounded.setdefault("s3.request-timeout", str(seconds))
    return bounded


REQUEST_TIMEOUT = "summary.request-timeout-seconds"  # read by BoundedRestCatalog only


@functools.cache
def _rest_catalog_class() -> type:
    from pyiceberg.catalog.rest import RestCatalog

    class BoundedRestCatalog(RestCatalog):
        """PyIceberg's REST catalog with a timeout on every request (connect and each read)."""

        def _create_session(self) -> Any:
            session = super()._create_session()
            seconds = float(self.properties.get(REQUEST_TIMEOUT) or DEFAULT_CATALOG_TIMEOUT_SECONDS)
            for adapter in session.adapters.values():  # SigV4 mounts its own adapter: bound whichever is there
                adapter.send = _with_timeout(adapter.send, seconds)  # type: ignore[method-assign]
            return session

    return BoundedRestCatalog


def _with_timeout(send: Any, seconds: float) -> Any:
    def send_with_timeout(request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = seconds
        return send(request, *args, **kwargs)

    return send_with_timeout


def __getattr__(name: str) -> Any:
    """``BoundedRestCatalog`` is built on first use: importing this module must not import PyIceberg."""
    if name == "BoundedRestCatalog":
        return _rest_catalog_class()
    raise AttributeError(name)


def load_table(cfg: SummaryConfig, warehouse: str, identifier: str) -> Table | None:
    """The PyIceberg table behind ``identifier``, or None when it does not exist (yet)."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    catalog_name, name = split_identifier(identifier, cfg.catalog.default)
    properties = pyiceberg_properties(cfg, warehouse, catalog_name)
    uri = properties.get("uri", "")
    if properties.get("type") == "sql" and uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None  # the embedded catalog's file appears with the first table; a read must not create it
    properties = bounded_properties(properties, catalog_timeout_seconds())
    try:
        return load_catalog(catalog_name, **properties).load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def _snapshot(table: Table | None) -> tuple[int | None, str | None]:
    snapshot = table.current_snapshot() if table is not None else None
    if snapshot is None:
        return None, None
    committed = dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.timezone.utc)
    return snapshot.snapshot_id, committed.isoformat(timespec="seconds")


def operations_since(table: Table | None, mark: str | None) -> dict[str, int] | None:
    """Snapshots per operation (append, overwrite, delete, ...) from the mark (exclusive) to the source's current
    snapshot: an ``overwrite`` or ``delete`` means a writer replaced or removed records, which the next backfill
    reads month by month. None when the walk cannot reach the mark (expired, rolled back, no mark): the next
    backfill reads the whole source."""
    snapshot = table.current_snapshot() if table is not None else None
    if table is None or mark is None:
        return None
    operations: dict[str, int] = {}
    while snapshot is not None and str(snapshot.snapshot_id) != mark:
        operation = snapshot.summary.operation.value if snapshot.summary is not None else "unknown"
        operations[operation] = operations.get(operation, 0) + 1
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return operations if snapshot is not None else None


def unapplied_source_snapshot(config_path: str | Path, warehouse: str | None = None) -> int | None:
    """The source's current snapshot id when it differs from the applied-backfill mark, else None."""
    cfg = load_config(config_path)
    warehouse = warehouse_location(cfg, warehouse)
    current, _ = _snapshot(load_table(cfg, warehouse, cfg.source_table))
    if current is None:  # no source table or no records yet: nothing to backfill
        return None
    control = load_table(cfg, warehouse, cfg.control_table)
    if control is None:
        return current  # the pipeline never ran: everything is new
    return None if control.properties.get(BACKFILL_MARK) == str(current) else current


def pipeline_status(cfg: SummaryConfig, warehouse: str | None = None) -> dict[str, Any]:
    """One config's state as its tables record it: source vs the backfill mark, last commits, the run lock."""
    warehouse = warehouse_location(cfg, warehouse)
    source = load_table(cfg, warehouse, cfg.source_table)
    source_snapshot, source_committed = _snapshot(source)
    summary_snapshot, summary_committed = _snapshot(load_table(cfg, warehouse, cfg.summary_table))
    control = load_table(cfg, warehouse, cfg.control_table)
    properties = control.properties if control is not None else {}
    mark = properties.get(BACKFILL_MARK) or None
    lock = lock_state(properties)
    unapplied = source_snapshot is not None and str(source_snapshot) != mark
    return {
        "name": cfg.name,
        "config": str(cfg.path),
        "source_table": cfg.source_table,
        "source_snapshot": source_snapshot,
        "source_committed_at": source_committed,
        "backfill_applied_snapshot": int(mark) if mark else None,
        "unapplied_source_records": unapplied,
        # snapshots per operation the next backfill applies (None: it reads the whole source, see docs/operations.md)
        "unapplied_source_operations": operations_since(source, mark) if unapplied else {},
        "summary_table": cfg.summary_table,
        "summary_snapshot": summary_snapshot,
        "summary_committed_at": summary_committed,
        "forward_months_since_maintenance": int(properties.get(MONTHS_SINCE_MAINTENANCE) or 0),
        "run_lock": {k: lock[k] for k in ("owner", "host", "pid", "expires-at")} if lock["token"] else None,
    }
