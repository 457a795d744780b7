"""Import error for invalid summary pipeline configs (no DAG here).

Airflow shows an exception raised by a DAG file as that file's import error.
Raising it here, apart from summary_dags.py, names every bad config file and
key path in the UI while every valid config's DAGs still load.
"""

from summary_airflow.factory import raise_config_errors

raise_config_errors()
