"""Summary pipeline DAGs: forward, backfill, maintenance and ingest for every config in include/configs/.

All logic lives in the installed package summary_airflow (the factory); a config that fails
validation is reported by summary_config_errors.py and does not stop the
others from loading.
"""

from summary_airflow.factory import register

register(globals())
