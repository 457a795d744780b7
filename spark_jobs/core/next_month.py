"""The month after every stored month (a scheduled forward run): latest_summary in one pass.

When month M is after every month ``summary`` holds, each winner of M is either
an account's first row (Case I) or follows its latest row (Case II), and the
new ``latest_summary`` is exactly: every latest row, replaced by its account's
new row where M has one, plus the accounts that are new. One pass over
``latest_summary`` therefore gives both what ``summary`` gains (the rows of M)
and the whole of the next ``latest_summary``, with no judging against
``summary`` (it has nothing at M) and no timeline. The values follow
docs/table-contract.md §4, built from the same functions as every other row (``history``).

Every function here is a pure ``DataFrame``/``Column`` function.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.history import carried, carried_names, first_history, grids, shifted_history, stored_value
from spark_jobs.core.month_columns import month_number_col
from spark_jobs.names import CARRIED_COLUMNS, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST

IS_NEW = "__is_new"  # the row is month M's (summary gains it); otherwise a latest row kept as it is
WINNER = "__winner"  # the month's winner of the account, packed so its columns cannot clash with latest's
HAS_LATEST = "__has_latest"  # the account has a latest row (absent: month M is its first)
ROW_KIND = "__row_kind"  # what a row of the next latest_summary is: KEPT, FIRST_ROW (Case I) or FOLLOWS_LATEST (Case II)
KEPT, FIRST_ROW, FOLLOWS_LATEST = "kept", "first_row", "follows_latest"


def new_row(cfg: SummaryConfig, follows_latest: bool) -> dict[str, Column]:
    """Column -> value of month M's row, from the packed ``WINNER`` and, when ``follows_latest``, the latest
    row's own columns (next to it in the join): arrays shifted by the gap, NULL winner values carried."""
    w = F.col(WINNER)
    values: dict[str, Column] = {}
    for column in cfg.mapped_columns:
        value = stored_value(cfg, column, w.getField(column), w.getField(cfg.month_column))
        if follows_latest and column in cfg.carry_columns:
            value = carried(value, F.col(column), w.getField(column).isNull())
        values[column] = value
    gap = w.getField(MONTH_NUMBER) - F.col(MONTH_NUMBER)
    for rolling in cfg.rolling_columns:
        value = w.getField(rolling.mapper_column)
        previous = F.col(rolling.history_column)
        values[rolling.history_column] = (
            shifted_history(rolling, value, gap, previous) if follows_latest else first_history(rolling, value)
        )
    values.update(grids(cfg, lambda history_column: values[history_column]))
    values[RECORD_DIGEST] = w.getField(RECORD_DIGEST)
    values[PREVIOUS_MONTH] = F.col(cfg.month_column) if follows_latest else F.lit(None).cast("string")
    values[CARRIED_COLUMNS] = carried_names(cfg, lambda c: w.getField(c))
    return values


def next_month_rows(winners: DataFrame, latest: DataFrame, cfg: SummaryConfig, broadcast: bool) -> DataFrame:
    """The next latest_summary, each row flagged ``IS_NEW`` (month M's, which summary gains) with its ``ROW_KIND``.

    ``winners``: month M's winners (mapped columns, digest, month number), one per account, M after every
    stored month; ``latest``: latest_summary's rows. ``broadcast``: ship the winners to every task, so
    latest_summary's wide rows are read in place and never shuffled (for few winners); otherwise one full
    outer join gives every row, new accounts included (measured at 1M accounts: shuffling latest_summary's
    rows costs less than broadcasting a month of winners, and a second join for the new accounts costs more).
    """
    key = cfg.key_column
    packed = winners.select(key, F.struct(*[F.col(c) for c in (*cfg.mapped_columns, RECORD_DIGEST, MONTH_NUMBER)]).alias(WINNER))
    with_month = latest.withColumn(MONTH_NUMBER, month_number_col(cfg.month_column)).withColumn(HAS_LATEST, F.lit(True))
    has_winner, has_latest = F.col(WINNER).isNotNull(), F.col(HAS_LATEST).isNotNull()
    follows, first = new_row(cfg, follows_latest=True), new_row(cfg, follows_latest=False)

    def value(c: str) -> Column:
        if c not in follows:
            return F.col(c)
        return F.when(~has_latest, first[c]).when(has_winner, follows[c]).otherwise(F.col(c))

    kind = F.when(~has_latest, F.lit(FIRST_ROW)).when(has_winner, F.lit(FOLLOWS_LATEST)).otherwise(F.lit(KEPT))
    flagged = [*[value(c).alias(c) for c in cfg.summary_columns], has_winner.alias(IS_NEW), kind.alias(ROW_KIND)]
    if not broadcast:
        return with_month.join(packed, key, "full").select(*flagged)
    followed = with_month.join(F.broadcast(packed), key, "left").select(*flagged)  # (every row has a latest row)
    started = packed.join(latest.select(key), key, "left_anti").select(
        *[first[c].alias(c) if c in first else F.col(c) for c in cfg.summary_columns],
        F.lit(True).alias(IS_NEW),
        F.lit(FIRST_ROW).alias(ROW_KIND),
    )
    return followed.unionByName(started)
