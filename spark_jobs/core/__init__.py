"""The pure core: Column expressions and DataFrame -> DataFrame functions, no reads or writes.

``mapping`` (source record -> mapped record, rejects, winners), ``history``
(the row rules: stored values, carry-forward, arrays, grids), ``month_columns``
(month arithmetic as Columns), ``classify`` (Case I/II/III), ``timeline``
(recomputing the rows a batch affects), ``next_month`` (the scheduled month's
rows in one join with latest_summary), ``expressions`` and ``filters``
(allowlisted SQL text).
"""
