"""Account-summary pipeline: config-driven PySpark stages over Apache Iceberg.

The layout is the architecture (docs/architecture.md):

- top level, no Spark at import: ``cli`` (the command line; ``summary_pipeline`` is spark-submit's script for it),
  ``config`` (+ ``config_schema.json``),
  ``names`` (what the jobs and the Airflow side share), ``catalogs``, ``months``,
  ``ingest_paths`` (which files an ingest reads), ``report``, ``errors``, ``sqltext`` (SQL text outside
  quotes), ``faults`` (named crash points for the fault tier), ``sample_data`` (the demo's sample feed);
- ``core``: the pure transformations, Column expressions and DataFrame -> DataFrame
  functions (mapping, history arrays, classification, timelines, allowlisted SQL);
- ``storage``: the Spark session and everything that reads or writes Iceberg
  (tables, writers, run lock, the mapper expressions checked against the source table);
- ``stages``: what each ``--mode`` runs, on the batch engine every applying mode shares.
"""

__version__ = "0.1.0"
