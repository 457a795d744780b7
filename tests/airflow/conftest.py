"""Airflow reads its settings when first imported: point it at a scratch home and this project's folders."""

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="summary-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
