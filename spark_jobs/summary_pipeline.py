#!/usr/bin/env python3
"""Summary pipeline entry script, compatible with v4's command line.

    spark-submit spark_jobs/summary_pipeline.py --config CFG --mode forward --start-month 2024-07
    python spark_jobs/summary_pipeline.py ...        (the same, Spark started in-process)

All logic lives in the ``spark_jobs`` package; this file only makes it
importable when run as a script and hands over to ``spark_jobs.cli``.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, Python puts this directory first on sys.path; the package's
# parent directory is what must be there instead.
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.pop(0)
sys.path.insert(0, os.path.dirname(_HERE))

from spark_jobs.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
