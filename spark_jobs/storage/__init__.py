"""Everything that touches Spark's session and Iceberg: the session and its jars, table creation and
ownership, the one commit protocol (``publish.RunBranches``) and the writers that use it, the backfill's
classifications and mark, the run lock, and direct Iceberg API calls."""
