"""Realistic sample source data for the example config (``accounts_all``), one Parquet file per month.

What a bureau feed really looks like: accounts opening and closing at different
months, months an account is not reported, corrected records sent again with a
later ``base_ts``, exact duplicates, sentinel amounts (-1), blank account types,
legacy ``0001-01-01`` dates, columns a lender stops sending, and a few broken
records (no key, malformed month) that must end in the rejects table.

    python -m spark_jobs.sample_data --out demo_data/source --accounts 2000 --start 2024-01 --months 12
"""

import argparse
import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spark_jobs.months import add_months, month_number

SCHEMA = pa.schema(
    [
        ("cons_acct_key", pa.int64()),
        ("bureau_mbr_id", pa.string()),
        ("port_type_cd", pa.string()),
        ("acct_type_dtl_cd", pa.string()),
        ("acct_open_dt", pa.date32()),
        ("acct_closed_dt", pa.date32()),
        ("acct_dt", pa.date32()),
        ("acct_stat_cd", pa.string()),
        ("acct_credit_ext_am", pa.int32()),
        ("acct_bal_am", pa.int32()),
        ("past_due_am", pa.int32()),
        ("actual_pymt_am", pa.int32()),
        ("last_pymt_dt", pa.date32()),
        ("high_credit_am_4in", pa.int32()),
        ("days_past_due_ct_4in", pa.int32()),
        ("asset_class_cd_4in", pa.string()),
        ("interest_rate_4in", pa.float64()),
        ("rpt_as_of_mo", pa.string()),
        ("base_ts", pa.timestamp("us", tz="UTC")),
    ]
)
ACCOUNT_TYPES = ["5", "10", "13", "214", "220", "", None]
LEGACY_DATE = dt.date(1, 1, 1)


def _first_day(month: str) -> dt.date:
    return dt.date(int(month[:4]), int(month[5:7]), 1)


class Account:
    def __init__(self, key: int, rng: random.Random, start: str, months: int) -> None:
        self.key = key
        self.open_month = add_months(start, rng.randrange(0, max(1, months // 2)) if rng.random() < 0.35 else 0)
        self.close_month = add_months(start, rng.randrange(months // 2, months)) if rng.random() < 0.1 else None
        self.type = rng.choice(ACCOUNT_TYPES)
        self.limit = rng.choice([50_000, 100_000, 250_000, 500_000, 1_000_000])
        self.balance = rng.randrange(0, self.limit)
        self.dpd = 0
        self.member = f"MBR{rng.randrange(1, 40):03d}"
        self.rate = round(rng.uniform(7.5, 24.0), 2)
        self.open_dt = (
            LEGACY_DATE if rng.random() < 0.03 else _first_day(self.open_month) - dt.timedelta(days=rng.randrange(0, 3000))
        )


def _record(account: Account, month: str, rng: random.Random, version_day: int) -> dict[str, Any]:
    stop_sending_rate = month_number(month) % 5 == 0 and rng.random() < 0.3
    account.balance = max(0, min(account.limit, account.balance + rng.randrange(-40_000, 60_000)))
    if rng.random() < 0.15:
        account.dpd = min(400, account.dpd + 30)
    elif rng.random() < 0.5:
        account.dpd = 0
    paid = rng.randrange(0, 30_000)
    closed = account.close_month is not None and month >= account.close_month
    return {
        "cons_acct_key": account.key,
        "bureau_mbr_id": None if rng.random() < 0.05 else account.member,
        "port_type_cd": rng.choice(["I", "R", "M"]),
        "acct_type_dtl_cd": account.type,
        "acct_open_dt": account.open_dt,
        "acct_closed_dt": _first_day(month) if closed else None,
        "acct_dt": None if rng.random() < 0.1 else _first_day(month) + dt.timedelta(days=rng.randrange(0, 27)),
        "acct_stat_cd": "13" if closed else rng.choice(["11", "11", "11", "71", "78"]),
        "acct_credit_ext_am": -1 if rng.random() < 0.02 else account.limit,
        "acct_bal_am": -1 if rng.random() < 0.02 else account.balance,
        "past_due_am": account.balance // 10 if account.dpd else 0,
        "actual_pymt_am": paid,
        "last_pymt_dt": _first_day(month) + dt.timedelta(days=rng.randrange(0, 27)) if paid else None,
        "high_credit_am_4in": account.limit + rng.randrange(0, 10_000),
        "days_past_due_ct_4in": account.dpd,
        "asset_class_cd_4in": rng.choice(["01", "02", "S", None]) if account.dpd > 90 else "01",
        "interest_rate_4in": None if stop_sending_rate else account.rate,
        "rpt_as_of_mo": month,
        "base_ts": dt.datetime.combine(_first_day(add_months(month, 1)), dt.time(6), dt.timezone.utc)
        + dt.timedelta(days=version_day, seconds=account.key % 3600),
    }


def generate(
    out_dir: str | Path, accounts: int = 2000, start: str = "2024-01", months: int = 12, seed: int = 7
) -> dict[str, int]:
    """Write ``<out_dir>/accounts_all_<YYYY-MM>.parquet`` for each month; return the record count per month."""
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = [Account(100_000 + i, rng, start, months) for i in range(accounts)]
    counts = {}
    for offset in range(months):
        month = add_months(start, offset)
        rows = []
        for account in people:
            if month < account.open_month or (account.close_month and month > add_months(account.close_month, 2)):
                continue
            if rng.random() < 0.04:  # not reported this month: a gap in the history
                continue
            record = _record(account, month, rng, version_day=0)
            rows.append(record)
            if rng.random() < 0.02:  # sent twice, byte for byte
                rows.append(dict(record))
            if rng.random() < 0.03:  # corrected a few days later
                rows.append(
                    {**record, "acct_bal_am": record["acct_bal_am"] + 1000, "base_ts": record["base_ts"] + dt.timedelta(days=3)}
                )
        rows.append({**rows[0], "cons_acct_key": None})  # broken feed records: rejected, kept
        rows.append({**rows[1], "rpt_as_of_mo": month.replace("-", "")})
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        pq.write_table(table, out / f"accounts_all_{month}.parquet")
        counts[month] = len(rows)
    return counts


def generate_late(
    out_dir: str | Path, accounts: int = 2000, start: str = "2024-01", months: int = 12, seed: int = 7, share: float = 0.03
) -> int:
    """A file of records that arrive after their months were processed: what backfills are for.

    Corrections of past months (newer ``base_ts``), stale resends (older
    ``base_ts``: they must lose), accounts reported for the first time with a
    year of history (Case I), and next-month records (Case II).
    """
    rng = random.Random(seed + 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = [Account(100_000 + i, random.Random(seed + i), start, months) for i in range(accounts)]
    last = add_months(start, months - 1)
    rows = []
    for account in rng.sample(people, max(1, int(accounts * share))):
        month = add_months(start, rng.randrange(0, months))
        record = _record(account, month, rng, version_day=20)  # newer than the on-time version
        rows.append({**record, "acct_bal_am": record["acct_bal_am"] + 777})
        stale = _record(account, add_months(start, rng.randrange(0, months)), rng, version_day=-20)
        rows.append(stale)
    for i in range(max(1, accounts // 100)):  # accounts the bureau sends late, with history
        account = Account(900_000 + i, rng, start, months)
        for offset in range(0, months, 2):
            rows.append(_record(account, add_months(start, offset), rng, version_day=25))
    for account in rng.sample(people, max(1, accounts // 200)):
        rows.append(_record(account, add_months(last, 1), rng, version_day=1))
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out / "accounts_all_late.parquet")
    return len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--start", default="2024-01")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--late", action="store_true", help="write one file of late and corrected records instead")
    args = parser.parse_args(argv)
    if args.late:
        count = generate_late(args.out, args.accounts, args.start, args.months, args.seed)
        print(f"wrote {count} late records under {args.out}")
        return
    counts = generate(args.out, args.accounts, args.start, args.months, args.seed)
    print(f"wrote {sum(counts.values())} records in {len(counts)} monthly files under {args.out}")


if __name__ == "__main__":
    main()
