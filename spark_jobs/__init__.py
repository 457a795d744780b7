"""Account-summary pipeline: config-driven PySpark stages over Apache Iceberg.

The data flow reads top to bottom in the module list: ``config`` ->
``session`` (catalog, jars) -> ``mapping`` (source records, rejects) ->
``history`` (arrays, grids, carry-forward) -> ``apply`` (classification and the
Case I/II/III timeline) -> ``writers`` (staging, MERGE, recovery) ->
``forward`` / ``ingest`` -> ``cli``.
"""

__version__ = "0.1.0"
