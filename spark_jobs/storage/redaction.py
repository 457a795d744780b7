"""What Spark hides in its event log, UI and plans: Spark's default terms plus every catalog credential key.

Spark applies ``spark.redaction.regex`` to each (key, value) of the Spark, Hadoop and system properties it writes to
the event log's environment update and shows in the UI's Environment tab: when the regex is found in the key *or* in
the value, the value becomes ``*********(redacted)``. Spark 4.1's default, ``(?i)secret|password|token|access[.]?key``,
misses keys Iceberg catalogs use for credentials: ``s3.access-key-id``, the REST catalog's OAuth2 ``credential``
(``client_id:client_secret``), ``header.*`` (``header.Authorization``), ADLS ``...account.key`` and a ``uri`` that
carries ``user:password@``. A value that matches is hidden whole, so ``sun.java.command`` (the driver's argv) goes
when it holds any of them.

``spark.redaction.string.regex`` is applied to text instead (SQL plans and their explain output, which the event
log's SQL events carry): only the matched part is replaced. Here: the userinfo of a URL and ``word=value`` pairs
of the secret words.
"""

from __future__ import annotations

# Spark's own default first (so nothing it hides comes back), then the catalog credential keys it misses.
SPARK_DEFAULT_REDACTION_REGEX = r"(?i)secret|password|token|access[.]?key"
CATALOG_CREDENTIAL_TERMS = (
    r"access[-_]key",  # s3.access-key-id, fs.s3a.access_key
    r"account[.]key",  # ADLS: fs.azure.account.key.<account>..., adls.auth.shared-key.account.key
    r"(?:private|shared|api|sas|client)[-_.]?key",
    r"key[-_.]?file",  # GCS service account key files
    r"credential",  # REST OAuth2 client_id:client_secret; *.credentials
    r"authorization",  # header.Authorization, in keys and in argv values
    r"bearer",
    r"header[.]",  # every REST catalog header (they carry tokens and api keys)
    r"signature",
    r"://[^/?#@\s]*@",  # a value holding a URL with userinfo: https://user:pw@host, jdbc:postgresql://u:p@h
)
REDACTION_REGEX = "|".join((SPARK_DEFAULT_REDACTION_REGEX, *CATALOG_CREDENTIAL_TERMS))
STRING_REDACTION_REGEX = (
    r"(?<=://)[^/?#@\s]+(?=@)"  # the user:password of a URL
    r"|(?i)(?<=(?:secret|password|token|credential|authorization|access[-_.]?key|account[.]key)[=:])[^\s,;&)'\"]+"
)


def redaction_conf() -> dict[str, str]:
    """Spark conf of both redaction patterns: set for every stage, under spark-submit and in a local session."""
    return {"spark.redaction.regex": REDACTION_REGEX, "spark.redaction.string.regex": STRING_REDACTION_REGEX}
