"""Import error for invalid summary pipeline configs (no DAG here).

Airflow shows an exception raised by a DAG file as that file's import error.
Raising it here, apart from summary_dags.py, names every bad config file and
key path in the UI while every valid config's DAGs still load.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _path in (_ROOT, _ROOT / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from summary_airflow.factory import raise_config_errors  # noqa: E402

raise_config_errors()
