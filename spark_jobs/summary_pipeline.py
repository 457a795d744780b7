#!/usr/bin/env python3
"""Summary pipeline entry script, compatible with v4's command line.

    spark-submit spark_jobs/summary_pipeline.py --config CFG --mode forward --start-month 2024-07
    python spark_jobs/summary_pipeline.py ...        (the same, Spark started in-process)

All logic lives in the ``spark_jobs`` package, installed with the project
(``pip install -e .``); this file only hands over to ``spark_jobs.cli``.
"""

import sys

from spark_jobs.cli import main

if __name__ == "__main__":
    sys.exit(main())
