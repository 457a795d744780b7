"""Direct Iceberg API calls (through the JVM) for what Spark SQL cannot do cheaply or atomically.

Spark SQL is the right tool for data; for table metadata (a snapshot's
summary, a compare-and-swap on table properties) a SQL statement costs a Spark
job, while the Iceberg API costs one catalog round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_jobs.core.expressions import JavaObject

# ``decide`` of swap_properties: the properties as of one metadata version -> the properties to set, or None.
Decide = Callable[[dict[str, str]], Mapping[str, object] | None]


def java_table(spark: SparkSession, identifier: str) -> JavaObject:
    """The ``org.apache.iceberg.Table`` behind a Spark identifier (fresh from the catalog)."""
    parts = identifier.split(".")
    catalog = parts[0] if len(parts) == 3 else spark.conf.get("spark.sql.defaultCatalog")
    plugin = spark._jsparkSession.sessionState().catalogManager().catalog(catalog)
    name = spark._jvm.org.apache.iceberg.catalog.TableIdentifier.parse(".".join(parts[-2:]))  # type: ignore[union-attr]
    return plugin.icebergCatalog().loadTable(name)


def current_snapshot(spark: SparkSession, identifier: str) -> tuple[int | None, dict[str, str]]:
    """(snapshot id, summary dict) of the table's current snapshot, or (None, {})."""
    snapshot = java_table(spark, identifier).currentSnapshot()
    if snapshot is None:
        return None, {}
    return snapshot.snapshotId(), dict(snapshot.summary())


def table_properties(spark: SparkSession, identifier: str) -> dict[str, str]:
    return dict(java_table(spark, identifier).properties())


def swap_properties(spark: SparkSession, identifier: str, decide: Decide) -> tuple[bool, dict[str, str]]:
    """Compare-and-swap on table properties.

    ``decide(properties) -> dict | None`` sees the properties as of one metadata
    version and returns the properties to set (``""`` removes a key), or None to
    do nothing. The change is committed only on top of exactly that version, and
    with an (empty) snapshot, so every Iceberg catalog, REST included, refuses it
    if anything else committed in between. Returns (committed, properties seen).
    """
    table = java_table(spark, identifier)
    # The transaction refreshes the table when it starts: decide on the metadata it starts from, which is
    # exactly the base the commit below is checked against (reading table.properties() first would let
    # a commit made in between slip under the decision, and two runs could both take the lock).
    transaction = table.newTransaction()
    seen = dict(transaction.startMetadata().properties())
    updates = decide(seen)
    if updates is None:
        return False, seen
    change = transaction.updateProperties()
    for key, value in updates.items():
        if value == "":
            change = change.remove(key)
        else:
            change = change.set(key, str(value))
    change.commit()
    transaction.newAppend().commit()  # a snapshot makes catalogs check the base version (REST: assert-ref-snapshot-id)
    try:
        table.operations().commit(transaction.startMetadata(), transaction.currentMetadata())
    except Exception as exc:
        if "CommitFailedException" in str(exc) or "CommitStateUnknownException" in str(exc):
            return False, seen
        raise
    return True, seen


def update_properties(spark: SparkSession, identifier: str, decide: Decide, attempts: int = 10) -> dict[str, str]:
    """``swap_properties`` retried until it commits or ``decide`` has nothing left to change.

    For state the lock holder owns (backfill marks): the only commits it can lose to are its own lease
    renewals, so a retry on fresh metadata is always right. Returns the properties last seen.
    """
    for _ in range(attempts):
        committed, seen = swap_properties(spark, identifier, decide)
        if committed or decide(seen) is None:
            return seen
    raise RuntimeError(f"could not update the properties of {identifier} after {attempts} attempts")
