"""What the fault tier tries (kill points) and the table of figures it prints at the end.

``SUMMARY_FAULT_FULL=1`` (``make test-faults``) runs the whole tier: 20 timed kill points
per stage, every named crash point, every backfill stage killed in every trial, both rounds
of every race. Without it (``make test``, i.e. CI) a reduced set runs: one crash point before the
publish decision, one between the two tables' publication, one crash followed by another run,
every backfill stage killed once over those three trials, one round of two of the three races.
``SUMMARY_FAULT_POINTS`` sets the number of timed kill points (0 in the reduced set).
"""

import os
from collections import defaultdict

from spark_jobs.faults import POINTS as ALL_CRASH_POINTS

FULL = os.environ.get("SUMMARY_FAULT_FULL") == "1"
TIMED_POINTS = int(os.environ.get("SUMMARY_FAULT_POINTS", "20" if FULL else "0"))
CRASH_POINTS = ALL_CRASH_POINTS if FULL else ("after_latest_written", "after_summary_published")


class Tally:
    """What the tier tried and found, per row of the final table (killed/lost: runs killed, or races lost)."""

    def __init__(self):
        self.rows = defaultdict(lambda: {"tried": 0, "killed": 0, "differences": 0, "seconds": 0.0})

    def add(self, row, tried=1, killed=0, differences=0, seconds=0.0):
        entry = self.rows[row]
        entry["tried"] += tried
        entry["killed"] += killed
        entry["differences"] += differences
        entry["seconds"] += seconds

    def table(self):
        line = "{:<72} {:>6} {:>11} {:>12} {:>8}".format
        total = {k: sum(e[k] for e in self.rows.values()) for k in ("tried", "killed", "differences", "seconds")}
        lines = [line("what", "tried", "killed/lost", "differences", "seconds"), "-" * 113]
        for name in sorted(self.rows):
            e = self.rows[name]
            lines.append(line(name, e["tried"], e["killed"], e["differences"], round(e["seconds"])))
        lines += ["-" * 113, line("total", total["tried"], total["killed"], total["differences"], round(total["seconds"]))]
        return "\n".join(lines)


TALLY = Tally()
