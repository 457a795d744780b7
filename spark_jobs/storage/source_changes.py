"""What changed in the source between two snapshots, whoever wrote it (metadata only).

An Iceberg incremental read returns the records of *append* snapshots only:
a ``MERGE INTO``, ``INSERT OVERWRITE``, ``UPDATE`` or ``DELETE`` commits an
``overwrite`` or ``delete`` snapshot, which it skips without a word. So a
backfill first walks the snapshots from its mark to the head and decides how
to read them (docs/operations.md, "Who may write the source"):

* ``incremental``: every snapshot appended (or only rewrote files, ``replace``):
  the incremental read is the whole change;
* ``touched-months``: some snapshots replaced or removed records; the months of
  the files they added or removed (their identity partition on the month
  column) are read whole at the head snapshot and judged against the summary
  as the source now stands, the other months incrementally;
* ``full-table``: the months cannot be known (the source is not partitioned by
  its month column, a snapshot between the mark and the head has expired, or
  the mark is not an ancestor of the head after a rollback): the whole source
  at the head is judged that way.
"""

from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from spark_jobs.storage.iceberg import java_table

INCREMENTAL, TOUCHED_MONTHS, FULL_TABLE = "incremental", "touched-months", "full-table"
LOGICAL_NO_CHANGE = ("replace",)  # rewrite_data_files and friends: same records, new files
APPEND = "append"


@dataclass(frozen=True)
class SourceChanges:
    """How to read the source between ``start`` (exclusive) and ``end``, and why."""

    path: str  # INCREMENTAL, TOUCHED_MONTHS or FULL_TABLE
    reason: str
    touched_months: tuple[str, ...] = ()  # TOUCHED_MONTHS: months read whole and judged as the source stands
    operations: dict[str, int] = field(default_factory=dict)  # snapshot operation -> snapshots, for the report

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {"path": self.path, "reason": self.reason, "snapshots": self.operations}
        if self.touched_months:
            described["touched_months"] = list(self.touched_months)
        return described


def changes_between(spark: SparkSession, identifier: str, start: int, end: int, month_column: str) -> SourceChanges:
    """Walk ``end``'s ancestors back to ``start`` and decide how a backfill reads what they changed."""
    table = java_table(spark, identifier)
    rewriting: list[object] = []
    operations: dict[str, int] = {}
    snapshot = table.snapshot(end)
    while snapshot is not None and snapshot.snapshotId() != start:
        operation = str(snapshot.operation() or "unknown")
        operations[operation] = operations.get(operation, 0) + 1
        if operation != APPEND and operation not in LOGICAL_NO_CHANGE:
            rewriting.append(snapshot)
        parent = snapshot.parentId()
        if parent is None:
            return SourceChanges(
                FULL_TABLE,
                f"source snapshot {start} (the mark) is not an ancestor of {end}: the table was "
                "rolled back or replaced since the last backfill",
                operations=operations,
            )
        snapshot = table.snapshot(parent)
    if snapshot is None:
        return SourceChanges(
            FULL_TABLE,
            f"a source snapshot between {start} (the mark) and {end} has expired, so what it changed is unknown",
            operations=operations,
        )
    if not rewriting:
        return SourceChanges(INCREMENTAL, "every snapshot since the mark appended records", operations=operations)
    months: set[str] = set()
    for rewrite in rewriting:
        found = _months_of_files(spark, table, rewrite, month_column)
        if found is None:
            return SourceChanges(
                FULL_TABLE,
                f"snapshot {rewrite.snapshotId()} ({rewrite.operation()}) changed files that are not "  # type: ignore[attr-defined]
                f"partitioned by {month_column}, so the months it touched are unknown",
                operations=operations,
            )
        months |= found
    if not months:
        return SourceChanges(INCREMENTAL, "the snapshots that were not appends changed no file", operations=operations)
    return SourceChanges(
        TOUCHED_MONTHS,
        f"{len(rewriting)} snapshot(s) replaced or removed records (MERGE, overwrite, update or delete): the months "
        "they touched are judged as the source now stands",
        tuple(sorted(months)),
        operations,
    )


def _months_of_files(spark: SparkSession, table: object, snapshot: object, month_column: str) -> set[str] | None:
    """The month partition values of every file ``snapshot`` added or removed; None when one has none."""
    jvm = spark._jvm
    value_class = jvm.java.lang.Class.forName("java.lang.Object")  # type: ignore[union-attr]
    io = table.io()  # type: ignore[attr-defined]
    positions: dict[int, int | None] = {}
    months: set[str] = set()
    for files in (
        snapshot.addedDataFiles(io),  # type: ignore[attr-defined]
        snapshot.removedDataFiles(io),  # type: ignore[attr-defined]
        snapshot.addedDeleteFiles(io),  # type: ignore[attr-defined]
        snapshot.removedDeleteFiles(io),  # type: ignore[attr-defined]
    ):
        found = files.iterator()
        while found.hasNext():
            content_file = found.next()
            spec_id = content_file.specId()
            if spec_id not in positions:
                positions[spec_id] = _identity_position(table.specs().get(spec_id), month_column)  # type: ignore[attr-defined]
            position = positions[spec_id]
            if position is None:
                return None
            value = content_file.partition().get(position, value_class)
            if value is None:
                return None
            months.add(str(value))
    return months


def _identity_position(spec: object, month_column: str) -> int | None:
    """The position of the identity partition field on ``month_column`` in ``spec`` (None: it has none)."""
    schema = spec.schema()  # type: ignore[attr-defined]
    for position, partition_field in enumerate(spec.fields()):  # type: ignore[attr-defined]
        source = schema.findColumnName(partition_field.sourceId())
        if str(source) == month_column and str(partition_field.transform()) == "identity":
            return position
    return None
