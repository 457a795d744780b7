"""Everything that touches Spark's session and Iceberg: the session and its jars, table creation and
ownership, the writers (stage, MERGE, recover), the run lock, and direct Iceberg API calls."""
