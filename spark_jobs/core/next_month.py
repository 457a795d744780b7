"""The month after every stored month (a scheduled forward run): latest_summary in one pass.

When month M is after every month ``summary`` holds, each winner of M is either
an account's first row (Case I) or follows its latest row (Case II), and the
new ``latest_summary`` is exactly: every latest row, replaced by its account's
new row where M has one, plus the accounts that are new. One pass over
``latest_summary`` therefore gives both what ``summary`` gains (the rows of M)
and the whole of the next ``latest_summary``, with no judging against
``summary`` (it has nothing at M) and no timeline. The values follow
docs/table-contract.md §4 exactly as ``timeline.shifted`` computes them.

Every function here is a pure ``DataFrame``/``Column`` function.
"""

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.history import clean_date, grid_of
from spark_jobs.core.month_columns import first_day_col, month_number_col
from spark_jobs.names import CARRIED_COLUMNS, CASE, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST

IS_NEW = "__is_new"  # the row is month M's (summary gains it); otherwise a latest row kept as it is
WINNER = "__winner"  # the month's winner of the account, packed so its columns cannot clash with latest's
HAS_LATEST = "__has_latest"  # the account has a latest row (absent: month M is its first)
KEPT, FIRST_ROW, FOLLOWS_LATEST = 0, 1, 2  # CASE of a row: kept latest row, Case I, Case II


def carried_names(cfg: SummaryConfig, value: Callable[[str], Column]) -> Column:
    """The carry columns whose winner value is NULL (they take the previous row's value), as array<string>."""
    if not cfg.carry_columns:
        return F.array().cast("array<string>")
    names = F.array(*[F.when(value(c).isNull(), F.lit(c)) for c in cfg.carry_columns])
    return F.array_compact(names)  # (not a lambda: compiled with the rest of the row)


def winner_value(cfg: SummaryConfig, column: str, winner: Column) -> Column:
    """The winner's own value of a mapped column as stored: primary date defaulted, dates cleaned."""
    value = winner.getField(column)
    if column == cfg.primary_date_column:
        value = F.coalesce(value, first_day_col(winner.getField(cfg.month_column)))
    if column in cfg.date_col_list:
        value = clean_date(value)
    return value


def new_row(cfg: SummaryConfig, follows_latest: bool) -> dict[str, Column]:
    """Column -> value of month M's row, from the packed ``WINNER`` and, when ``follows_latest``, the latest
    row's own columns (next to it in the join): arrays shifted by the gap, NULL winner values carried."""
    w = F.col(WINNER)
    carried = carried_names(cfg, lambda c: w.getField(c))
    values: dict[str, Column] = {}
    for column in cfg.mapped_columns:
        value = winner_value(cfg, column, w)
        if follows_latest and column in cfg.carry_columns:  # (the test ``carried`` makes, without its array)
            value = F.when(w.getField(column).isNull(), F.col(column)).otherwise(value)
        values[column] = value
    gap = w.getField(MONTH_NUMBER) - F.col(MONTH_NUMBER)
    for rolling in cfg.rolling_columns:
        this_month = F.array(w.getField(rolling.mapper_column).cast(rolling.sql_type))
        if follows_latest:
            nulls = F.array_repeat(F.lit(None).cast(rolling.sql_type), (gap - 1).cast("int"))
            history = F.slice(F.concat(this_month, nulls, F.col(rolling.history_column)), 1, rolling.num_cols)
        else:
            history = F.concat(this_month, F.array_repeat(F.lit(None).cast(rolling.sql_type), rolling.num_cols - 1))
        values[rolling.history_column] = history
    for g in cfg.grid_columns:
        values[g.name] = grid_of(g, values[cfg.rolling_by_name(g.mapper_rolling_column).history_column])
    values[RECORD_DIGEST] = w.getField(RECORD_DIGEST)
    values[PREVIOUS_MONTH] = F.col(cfg.month_column) if follows_latest else F.lit(None).cast("string")
    values[CARRIED_COLUMNS] = carried
    return values


def next_month_rows(winners: DataFrame, latest: DataFrame, cfg: SummaryConfig, broadcast: bool) -> DataFrame:
    """The next latest_summary, each row flagged ``IS_NEW`` (month M's, which summary gains) with its CASE.

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

    case = F.when(~has_latest, F.lit(FIRST_ROW)).when(has_winner, F.lit(FOLLOWS_LATEST)).otherwise(F.lit(KEPT))
    flagged = [*[value(c).alias(c) for c in cfg.summary_columns], has_winner.alias(IS_NEW), case.alias(CASE)]
    if not broadcast:
        return with_month.join(packed, key, "full").select(*flagged)
    followed = with_month.join(F.broadcast(packed), key, "left").select(*flagged)  # (every row has a latest row)
    started = packed.join(latest.select(key), key, "left_anti").select(
        *[first[c].alias(c) if c in first else F.col(c) for c in cfg.summary_columns],
        F.lit(True).alias(IS_NEW),
        F.lit(FIRST_ROW).alias(CASE),
    )
    return followed.unionByName(started)
