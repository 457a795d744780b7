"""The JVM jars the jobs need, fetched once from Maven Central into a project-local cache.

``make setup`` runs ``python -m spark_jobs.storage.jars``; afterwards every job works
offline from the cache. A job started without the cache fetches what is
missing first, so ``spark-submit spark_jobs/summary_pipeline.py`` needs no
``--packages`` or ``--jars``.
"""

import hashlib
import os
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

from spark_jobs.names import EXTRA_PACKAGES_ENV, JARS_DIR_ENV, MAVEN_REPO_ENV

MAVEN_CENTRAL = os.environ.get(MAVEN_REPO_ENV, "https://repo1.maven.org/maven2")
ICEBERG_VERSION = "1.12.0"
SQLITE_JDBC_VERSION = "3.54.1.0"
# Iceberg publishes iceberg-spark-runtime-<spark minor>_2.13 for Spark 4.0 (since 1.10) and 4.1 (since 1.11).
SUPPORTED_SPARK_MINORS = ("4.0", "4.1")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{MAVEN_CENTRAL}/{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.file_name}"


def spark_minor(version: str | None = None) -> str:
    if version is None:
        # The installed distribution's version, without importing pyspark (the Airflow side calls this).
        version = installed_version("pyspark")
    return ".".join(version.split(".")[:2])


def required_artifacts(spark_version: str | None = None) -> tuple[Artifact, Artifact]:
    minor = spark_minor(spark_version)
    if minor not in SUPPORTED_SPARK_MINORS:
        raise RuntimeError(
            f"no Apache Iceberg Spark runtime is published for Spark {minor}; "
            f"install pyspark {' or '.join(SUPPORTED_SPARK_MINORS)} (see requirements.txt)"
        )
    return (
        Artifact("org.apache.iceberg", f"iceberg-spark-runtime-{minor}_2.13", ICEBERG_VERSION),
        Artifact("org.xerial", "sqlite-jdbc", SQLITE_JDBC_VERSION),
    )


def extra_artifacts() -> tuple[Artifact, ...]:
    """Jars a deployment adds by Maven coordinates (comma-separated group:artifact:version), e.g.
    ``org.apache.iceberg:iceberg-aws-bundle:1.12.0`` for S3FileIO."""
    artifacts = []
    for coordinate in filter(None, (c.strip() for c in os.environ.get(EXTRA_PACKAGES_ENV, "").split(","))):
        parts = coordinate.split(":")
        if len(parts) != 3 or not all(parts):
            raise RuntimeError(f"${EXTRA_PACKAGES_ENV}: {coordinate!r} is not group:artifact:version")
        artifacts.append(Artifact(*parts))
    return tuple(artifacts)


def with_jars(given: list[str], ours: list[str]) -> list[str]:
    """``given`` (a --jars list: paths or file: URIs) plus each of ``ours`` whose file name it lacks."""
    names = {Path(j.removeprefix("file:")).name for j in given}
    return given + [j for j in ours if Path(j).name not in names]


def cache_dir() -> Path:
    return Path(os.environ.get(JARS_DIR_ENV, PROJECT_ROOT / ".jars"))


def ensure_jars(directory: str | Path | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Return the local paths of every required jar, downloading missing ones (SHA-1 checked)."""
    directory = Path(directory or cache_dir())
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for artifact in (*required_artifacts(), *extra_artifacts()):
        target = directory / artifact.file_name
        if not target.exists():
            log(f"fetching {artifact.url}")
            _download_verified(artifact, target)
        paths.append(target)
    return paths


def _download_verified(artifact: Artifact, target: Path) -> None:
    try:
        with urllib.request.urlopen(artifact.url + ".sha1", timeout=60) as response:
            expected = response.read().decode().split()[0].strip().lower()
        partial = target.with_suffix(".part")
        digest = hashlib.sha1()
        with urllib.request.urlopen(artifact.url, timeout=300) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise RuntimeError(
            f"cannot fetch {artifact.url} ({exc}); run `make setup` where Maven Central is reachable, "
            f"or put {artifact.file_name} into {target.parent}"
        ) from exc
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"checksum mismatch for {artifact.url}: got {digest.hexdigest()}, expected {expected}")
    partial.replace(target)  # atomic: a half-written jar never looks cached


if __name__ == "__main__":
    for path in ensure_jars():
        print(path)
    sys.exit(0)
