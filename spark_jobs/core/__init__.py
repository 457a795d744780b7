"""The pure core: Column expressions and DataFrame -> DataFrame functions, no reads or writes.

``mapping`` (source record -> mapped record, rejects, winners), ``history``
(arrays, grids, date cleaning), ``month_columns`` (month arithmetic as
Columns), ``classify`` (Case I/II/III), ``timeline`` (recomputing the rows a
batch affects), ``expressions`` and ``filters`` (allowlisted SQL text).
"""
