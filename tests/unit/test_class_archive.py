"""Which class archive a stage's driver JVM is given, and when none (spark_jobs/storage/class_archive.py)."""

from pathlib import Path

import pytest

from spark_jobs.storage import class_archive


@pytest.fixture
def jdk(tmp_path, monkeypatch):
    """A JDK folder with a release file, as spark-submit finds it through $JAVA_HOME."""
    home = tmp_path / "jdk"
    home.mkdir()
    (home / "release").write_text('JAVA_VERSION="17.0.15"\nIMPLEMENTOR="Debian"\n')
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setenv("SUMMARY_JARS_DIR", str(tmp_path / "jars"))
    monkeypatch.delenv("SUMMARY_CLASS_ARCHIVE", raising=False)
    for name in class_archive.CLASS_PATH_DIRS_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def test_each_jdk_build_and_class_path_has_its_own_archive(jdk, monkeypatch):
    first = class_archive.archive_path()
    assert first.parent == jdk.parent / "jars" and first.name.startswith("driver-classes-")
    monkeypatch.setenv("SPARK_CONF_DIR", "/opt/conf")  # on the driver's class path: the archive records it
    conf_dir = class_archive.archive_path()
    (jdk / "release").write_text('JAVA_VERSION="17.0.16"\nIMPLEMENTOR="Debian"\n')
    other_jdk = class_archive.archive_path()
    monkeypatch.setenv("SUMMARY_EXTRA_PACKAGES", "org.example:extra:1.0")
    extra_jar = class_archive.archive_path()
    monkeypatch.setenv("SPARK_HOME", "/opt/spark")  # another Spark install: its jars are other class-path entries
    other_spark = class_archive.archive_path()
    assert len({first, conf_dir, other_jdk, extra_jar, other_spark}) == 5


def test_no_option_until_the_archive_is_built(jdk):
    assert class_archive.driver_java_options() == ""
    assert class_archive.with_driver_java_options({"spark.x": "1"}) == {"spark.x": "1"}
    path = class_archive.archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert class_archive.driver_java_options() == f"-XX:SharedArchiveFile={path}"


def test_the_option_goes_before_the_authors_own_and_yields_to_theirs(jdk, monkeypatch):
    built = jdk.parent / "built.jsa"
    built.write_bytes(b"archive")
    monkeypatch.setenv("SUMMARY_CLASS_ARCHIVE", str(built))
    conf = class_archive.with_driver_java_options({"spark.driver.extraJavaOptions": "-Dfoo=1"})
    assert conf["spark.driver.extraJavaOptions"] == f"-XX:SharedArchiveFile={built} -Dfoo=1"
    for theirs in ("-XX:SharedArchiveFile=/opt/mine.jsa", "-Xshare:off"):
        assert class_archive.with_driver_java_options({"spark.driver.extraJavaOptions": theirs}) == {
            "spark.driver.extraJavaOptions": theirs
        }


def test_other_options_go_with_ours_whether_or_not_an_archive_is_used(jdk, monkeypatch):
    built = jdk.parent / "built.jsa"
    built.write_bytes(b"archive")
    monkeypatch.setenv("SUMMARY_CLASS_ARCHIVE", str(built))
    theirs = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=4"}
    c1 = "-XX:TieredStopAtLevel=1"
    conf = class_archive.with_driver_java_options(theirs, quick_start=True)
    assert conf["spark.driver.extraJavaOptions"] == f"-XX:SharedArchiveFile={built} {c1} -XX:TieredStopAtLevel=4"
    conf = class_archive.with_driver_java_options({"spark.driver.extraJavaOptions": "-Xshare:off"}, quick_start=True)
    assert conf["spark.driver.extraJavaOptions"] == f"{c1} -Xshare:off"
    monkeypatch.setenv("SUMMARY_CLASS_ARCHIVE", "off")
    assert class_archive.with_driver_java_options({}, quick_start=False) == {}
    assert class_archive.with_driver_java_options({}, quick_start=True) == {
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"
    }


def test_off_turns_it_off_everywhere(jdk, monkeypatch):
    path = class_archive.archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    monkeypatch.setenv("SUMMARY_CLASS_ARCHIVE", "OFF")
    assert class_archive.archive_path() is None
    assert class_archive.driver_java_options() == ""
    assert class_archive.build(log=lambda _: None) is None
    assert Path(path).read_bytes() == b"archive"  # nothing rebuilt or removed


def test_a_folder_with_files_on_the_class_path_means_no_archive_and_says_why(jdk, tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    path = class_archive.archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert class_archive.driver_java_options() == f"-XX:SharedArchiveFile={path}"  # an empty folder is fine
    (conf / "log4j2.properties").write_text("rootLogger.level = warn\n")
    assert class_archive.blocking_folders() == [str(conf)]
    assert class_archive.driver_java_options() == ""  # the JVM would refuse the archive: none is given
    said = []
    assert class_archive.build(log=said.append) is None
    assert str(conf) in said[0] and "-Dlog4j2.configurationFile" in said[0]
