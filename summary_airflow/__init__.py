"""Airflow side of the summary pipeline: a DAG factory over the configs in include/configs/.

DAG files stay thin (dags/); everything here is importable and unit-tested.
Each task runs a ``spark_jobs`` stage through real ``spark-submit``.
"""
