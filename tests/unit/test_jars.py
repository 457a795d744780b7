import pytest

from spark_jobs.storage.jars import required_artifacts


def test_the_iceberg_runtime_matches_the_spark_minor():
    iceberg, sqlite = required_artifacts("4.1.3")
    assert iceberg.name == "iceberg-spark-runtime-4.1_2.13"
    assert iceberg.url.startswith("https://repo1.maven.org/maven2/org/apache/iceberg/iceberg-spark-runtime-4.1_2.13/")
    assert sqlite.file_name.startswith("sqlite-jdbc-")
    assert required_artifacts("4.0.1")[0].name == "iceberg-spark-runtime-4.0_2.13"


def test_a_spark_without_an_iceberg_runtime_is_refused_by_name():
    with pytest.raises(RuntimeError, match="no Apache Iceberg Spark runtime is published for Spark 4.3"):
        required_artifacts("4.3.0")


def test_deployments_add_jars_by_maven_coordinates(monkeypatch):
    from spark_jobs.storage.jars import extra_artifacts

    monkeypatch.setenv("SUMMARY_EXTRA_PACKAGES", "org.apache.iceberg:iceberg-aws-bundle:1.12.0, ")
    (bundle,) = extra_artifacts()
    assert bundle.url.endswith("/org/apache/iceberg/iceberg-aws-bundle/1.12.0/iceberg-aws-bundle-1.12.0.jar")
    monkeypatch.setenv("SUMMARY_EXTRA_PACKAGES", "iceberg-aws-bundle")
    with pytest.raises(RuntimeError, match="'iceberg-aws-bundle' is not group:artifact:version"):
        extra_artifacts()


def test_our_jars_are_added_only_where_the_given_list_lacks_their_file():
    from spark_jobs.storage.jars import with_jars

    given = ["file:/opt/jars/iceberg-spark-runtime-4.1_2.13-1.12.0.jar", "/opt/jars/postgresql-42.jar"]
    ours = ["/cache/iceberg-spark-runtime-4.1_2.13-1.12.0.jar", "/cache/sqlite-jdbc-3.54.1.0.jar"]
    assert with_jars(given, ours) == [*given, "/cache/sqlite-jdbc-3.54.1.0.jar"]
    assert with_jars([], ours) == ours
