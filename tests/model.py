"""An independent, plain-Python model of docs/table-contract.md, for comparing against the real tables.

It shares no code with ``spark_jobs``: it takes the config's column lists from
the raw JSON dict and the mapping expressions as Python functions written by
the test next to the SQL they stand for. It recomputes both tables from the
set S of source records read so far, from scratch, the slow obvious way.
"""

import datetime as dt
import hashlib
from decimal import Decimal

BOOKKEEPING = ("_record_digest", "_previous_month", "_carried_columns")


def month_number(month):
    return int(month[:4]) * 12 + int(month[5:7])


def month_of(number):
    year, index = divmod(number - 1, 12)
    return f"{year:04d}-{index + 1:02d}"


def valid_month(month):
    return (
        isinstance(month, str)
        and len(month) == 7
        and month[:4].isdigit()
        and month[4] == "-"
        and month[5:].isdigit()
        and 1 <= int(month[5:]) <= 12
    )


def spark_string(value):
    """What Spark's CAST(value AS STRING) gives (UTC session), for the types these tests use."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return text
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, float):
        raise TypeError("the model does not reproduce Spark's double formatting; use Decimal in model tests")
    return str(value)


def digest(values):
    """The documented tie-break digest: sha-256 of values as strings joined by U+001F, NULL as U+0000."""
    text = "\u001f".join("\u0000" if v is None else spark_string(v) for v in values)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


def clean(value):
    return None if value is not None and value.year < 1000 else value


class SummaryModel:
    """Expected ``summary`` and ``latest_summary`` for a config dict and Python versions of its expressions.

    ``python_exprs`` maps ``("column_transformations", i)``, ``("inferred_columns", i)``
    and ``("rolling_columns", i)`` to functions of the record-so-far (a dict).
    """

    def __init__(self, raw_config, python_exprs):
        self.raw = raw_config
        self.exprs = python_exprs
        self.month_col = raw_config["partition_column"]
        self.key_col = raw_config["primary_column"]
        self.version_col = raw_config["max_identifier_column"]
        self.date_col = raw_config.get("primary_date_column")
        self.dates = set(raw_config.get("date_col_list", []))
        self.excluded = set(raw_config.get("coalesce_exclusion_cols", []))
        self.rolling = raw_config.get("rolling_columns", [])
        self.default_length = raw_config.get("history_length", 36)
        names = list(raw_config["columns"].values())
        for section in ("column_transformations", "inferred_columns"):
            names += [d["name"] for d in raw_config.get(section, []) if d["name"] not in names]
        names += [r["mapper_column"] for r in self.rolling if r["mapper_column"] not in names]
        self.scalars = names
        mappers = {r["mapper_column"] for r in self.rolling}
        fixed = {self.key_col, self.month_col, self.version_col, self.date_col}
        self.carried = [c for c in names if c not in fixed and c not in mappers and c not in self.excluded]

    # --- §1 and §2 --------------------------------------------------------------------
    def map_record(self, source):
        record = {dst: source.get(src) for src, dst in self.raw["columns"].items()}
        record_digest = digest([record[dst] for dst in self.raw["columns"].values()])
        for section in ("column_transformations", "inferred_columns"):
            for i, spec in enumerate(self.raw.get(section, [])):
                record[spec["name"]] = self.exprs[(section, i)](dict(record))
        for i, spec in enumerate(self.rolling):
            record[spec["mapper_column"]] = self.exprs[("rolling_columns", i)](dict(record))
        record["_record_digest"] = record_digest
        return record

    def is_rejected(self, record):
        return record[self.key_col] is None or record[self.version_col] is None or not valid_month(record[self.month_col])

    # --- §3 to §5 ---------------------------------------------------------------------
    def winners(self, source_records):
        best = {}
        for source in source_records:
            record = self.map_record(source)
            if self.is_rejected(record):
                continue
            k = (record[self.key_col], record[self.month_col])
            rank = (record[self.version_col], record["_record_digest"])
            if k not in best or rank > (best[k][self.version_col], best[k]["_record_digest"]):
                best[k] = record
        return best

    def tables(self, source_records):
        """(summary rows keyed by (key, month), latest_summary rows keyed by key)."""
        winners = self.winners(source_records)
        by_account = {}
        for (key, month), record in winners.items():
            by_account.setdefault(key, {})[month_number(month)] = record
        summary, latest = {}, {}
        for key, months in by_account.items():
            previous = None
            for number in sorted(months):
                row = self._row(months, number, previous)
                summary[(key, row[self.month_col])] = row
                previous = row
            latest[key] = previous
        return summary, latest

    def _row(self, months, number, previous):
        winner = months[number]
        month = month_of(number)
        row = {}
        for column in self.scalars:
            value = winner[column]
            if column == self.date_col and value is None:
                value = dt.date(int(month[:4]), int(month[5:]), 1)
            if column in self.carried and value is None and previous is not None:
                value = previous[column]  # already clean
            elif column in self.dates:
                value = clean(value)
            row[column] = value
        for spec in self.rolling:
            length = spec.get("num_cols", self.default_length)
            mapper = spec["mapper_column"]
            row[f"{spec['name']}_history"] = [months[number - i][mapper] if number - i in months else None for i in range(length)]
            if mapper in self.dates:
                row[mapper] = clean(row[mapper])
                row[f"{spec['name']}_history"] = [clean(v) for v in row[f"{spec['name']}_history"]]
        for grid in self.raw.get("grid_columns", []):
            spec = next(r for r in self.rolling if r["name"] == grid["mapper_rolling_column"])
            separator = grid.get("separator", grid.get("seperator", ""))
            placeholder = grid.get("placeholder", "?")
            row[grid["name"]] = separator.join(
                placeholder if v is None else spark_string(v) for v in row[f"{spec['name']}_history"]
            )
        row["_record_digest"] = winner["_record_digest"]
        row["_previous_month"] = previous[self.month_col] if previous else None
        row["_carried_columns"] = [c for c in self.carried if winner[c] is None]
        return row


def normalise(value):
    """Spark collect() values -> the model's Python types."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value
