"""What one ``--mode`` runs: the shared run set-up (``runs``), the general batch engine every applying mode
uses (``batch``, with what it reads of the stored tables in ``stored_reads``), the scheduled month's fast
path (``scheduled_month``), and one module per stage: ingest, forward (and initial), backfill (classify,
case I/II/III), maintenance, check, rebuild (rebuild-latest), describe."""
