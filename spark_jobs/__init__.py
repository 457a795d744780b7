"""Account-summary pipeline: config-driven PySpark stages over Apache Iceberg.

The layout is the architecture (docs/architecture.md):

- top level, no Spark: ``cli`` (the command line), ``config`` (+ ``config_schema.json``),
  ``names`` (what the jobs and the Airflow side share), ``catalogs``, ``months``,
  ``report``, ``errors``;
- ``core``: the pure transformations, Column expressions and DataFrame -> DataFrame
  functions (mapping, history arrays, classification, timelines, allowlisted SQL);
- ``storage``: the Spark session and everything that reads or writes Iceberg
  (tables, writers, run lock);
- ``stages``: what each ``--mode`` runs, on the batch engine every applying mode shares.
"""

__version__ = "0.1.0"
