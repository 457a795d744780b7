"""Direct Iceberg API calls (through the JVM) for what Spark SQL cannot do cheaply or atomically.

Spark SQL is the right tool for data; for table metadata (a snapshot's
summary, a compare-and-swap on table properties) a SQL statement costs a Spark
job, while the Iceberg API costs one catalog round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from spark_jobs.catalogs import split_identifier

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_jobs.core.expressions import JavaObject

# ``decide`` of swap_properties: the properties as of one metadata version -> the properties to set, or None.
Decide = Callable[[dict[str, str]], Mapping[str, object] | None]


def default_catalog(spark: SparkSession) -> str:
    """The catalog of a two-part table name (``catalogs.catalog_conf`` sets it to the config's ``catalog.default``)."""
    return str(spark.conf.get("spark.sql.defaultCatalog"))  # always set: Spark's own default is spark_catalog


def java_table(spark: SparkSession, identifier: str) -> JavaObject:
    """The ``org.apache.iceberg.Table`` behind a Spark identifier (fresh from the catalog)."""
    catalog, name = split_identifier(identifier, lambda: default_catalog(spark))
    plugin = spark._jsparkSession.sessionState().catalogManager().catalog(catalog)
    table = spark._jvm.org.apache.iceberg.catalog.TableIdentifier.parse(name)  # type: ignore[union-attr]
    return plugin.icebergCatalog().loadTable(table)


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


def files_matching(spark: SparkSession, identifier: str, predicate: Callable[[JavaObject], JavaObject]) -> JavaObject:
    """The current snapshot's data-file scan tasks whose partition can hold rows matching ``predicate``.

    ``predicate(Expressions) -> Expression`` builds an Iceberg filter; planning reads manifests only.
    """
    expressions = spark._jvm.org.apache.iceberg.expressions.Expressions  # type: ignore[union-attr]
    return java_table(spark, identifier).newScan().filter(predicate(expressions)).planFiles()


def has_rows_from(spark: SparkSession, identifier: str, column: str, value: str) -> bool:
    """Whether any data file of ``identifier`` may hold a row with ``column >= value`` (metadata only)."""
    tasks = files_matching(spark, identifier, lambda e: e.greaterThanOrEqual(column, value))
    try:
        return bool(tasks.iterator().hasNext())
    finally:
        tasks.close()


def record_count(spark: SparkSession, identifier: str, column: str, value: str) -> int:
    """Rows in the data files of ``identifier`` whose partition is ``column = value`` (for a table without deletes)."""
    tasks = files_matching(spark, identifier, lambda e: e.equal(column, value))
    try:
        total, files = 0, tasks.iterator()
        while files.hasNext():
            total += files.next().file().recordCount()
        return total
    finally:
        tasks.close()


def branch_head(spark: SparkSession, identifier: str, branch: str) -> tuple[int | None, dict[str, str]]:
    """(snapshot id, summary dict) of the head of ``branch``, or (None, {}) when there is no such branch."""
    table = java_table(spark, identifier)
    ref = table.refs().get(branch)
    if ref is None:
        return None, {}
    snapshot = table.snapshot(ref.snapshotId())
    return snapshot.snapshotId(), dict(snapshot.summary())
