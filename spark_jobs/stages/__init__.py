"""What one ``--mode`` runs: the shared run set-up (``runs``), the batch engine every applying mode uses
(``batch``), and one module per stage: ingest, forward (and initial), backfill (classify, case I/II/III),
maintenance, check, rebuild (rebuild-latest), describe."""
