"""Summary pipeline DAGs: forward, backfill and maintenance for every config in include/configs/.

All logic lives in plugins/summary_airflow (the factory); a config that fails
validation is reported by summary_config_errors.py and does not stop the
others from loading.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _path in (_ROOT, _ROOT / "plugins"):  # the jobs package and the factory, wherever Airflow's folders point
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from summary_airflow.factory import register  # noqa: E402

register(globals())
