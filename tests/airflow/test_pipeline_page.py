"""The pipeline page: figures from real Iceberg tables (written with PyIceberg, no Spark) and report files,
served by the plugin's FastAPI app, drawn as SVG, and seen by a headless browser.

Every expected figure below is written by hand from the rows and reports the fixture creates.
"""

import datetime as dt
import json
import os
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support_browser import browser, colour_counts, read_png, screenshot, unfilter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "configs" / "summary_config.json"
# The run part of report file names (settings.report_file_name): two DAG runs.
RUN_1, RUN_2 = "manual__2024-07-01T12_00_00_00_00", "scheduled__2024-07-02T00_00_00_00_00"
UTC = dt.timezone.utc
EVIL = "<script>alert(1)</script>"

# What the fixture writes (months of rpt_as_of_mo -> rows)
SUMMARY_ROWS = {"2024-01": 3, "2024-02": 5, "2024-04": 2}  # 2024-01 in two appends (2 + 1)
SOURCE_RECORDS = {"2024-01": 4, "2024-02": 6, "2024-03": 7, "2024-04": 2}  # 2024-03 never reached summary


# --- fixture: tables and reports ----------------------------------------------------------------


def _catalog(warehouse):
    """The embedded catalog as the jobs lay it out: one SQLite file in the warehouse, catalog `local`."""
    from pyiceberg.catalog import load_catalog

    return load_catalog(
        "local", type="sql", uri=f"sqlite:///{warehouse}/iceberg_catalog.sqlite", warehouse=f"file://{warehouse}/local"
    )


def _month_table(catalog, identifier, counts_per_append):
    """A table partitioned by identity(rpt_as_of_mo), one append per dict of month -> rows."""
    import pyarrow as pa
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    schema = Schema(NestedField(1, "cons_acct_key", LongType()), NestedField(2, "rpt_as_of_mo", StringType()))
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="rpt_as_of_mo"))
    table = catalog.create_table(identifier, schema=schema, partition_spec=spec)
    for counts in counts_per_append:
        months = [m for m, n in counts.items() for _ in range(n)]
        table.append(pa.table({"cons_acct_key": pa.array(range(len(months)), pa.int64()), "rpt_as_of_mo": months}))
    return table


def _rejects_table(catalog, identifier, rows):
    """The rejects table's schema (spark_jobs/storage/tables.py: rejects_schema), with (run, reason, minute) rows."""
    import pyarrow as pa

    timestamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("_run_id", pa.string()), ("rejected_at", timestamp), ("reason", pa.string()), ("record_key", pa.string()),
            ("record_month", pa.string()), ("record_version", pa.string()), ("record", pa.string()),
            ("_record_digest", pa.int64()),
        ]
    )  # fmt: skip
    table = catalog.create_table(identifier, schema=schema)
    data = {
        "_run_id": [r for r, _, _ in rows],
        "rejected_at": [dt.datetime(2024, 7, 1, 10, minute, tzinfo=UTC) for _, _, minute in rows],
        "reason": [reason for _, reason, _ in rows],
        "record_key": ["1"] * len(rows),
        "record_month": ["2024-07"] * len(rows),
        "record_version": [None] * len(rows),
        "record": ["{}"] * len(rows),
        "_record_digest": list(range(len(rows))),
    }
    table.append(pa.table(data, schema=schema))


NULL_KEY = "NULL cons_acct_key (primary_column)"
BAD_MONTH = 'rpt_as_of_mo (partition_column) is not a YYYY-MM month: "2024-13"'
REJECTS = [  # (run id, reason, minute of 2024-07-01 10:mm)
    ("forward-a", NULL_KEY, 1),
    ("forward-a", NULL_KEY, 2),
    ("forward-a", BAD_MONTH, 3),
    ("ingest-b", NULL_KEY, 20),
    ("ingest-b", NULL_KEY, 21),
    ("ingest-b", NULL_KEY, 22),
    (EVIL, "<b>bold</b>", 10),
]


def _report(folder, name, minute, config, **fields):
    """A report file as the operator leaves it, last written at 2024-07-01 12:mm UTC."""
    report = {"config": str(config), "status": "ok", "dry_run": False, "seconds": 1.0, **fields}
    path = folder / name
    path.write_text(json.dumps(report))
    stamp = dt.datetime(2024, 7, 1, 12, minute, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def _write_reports(folder, config, other_config):
    cases = lambda i, ii, iii: {"I": i, "II": ii, "III": iii}  # noqa: E731
    forward = {"mode": "forward", "details": {"phase_seconds": {"read": 2.5, "commit": 4.0}}}
    _report(
        folder,
        f"summary_forward.initial_load.forward_2024_01.{RUN_1}.1.json",
        1,
        config,
        run_id="forward-1",
        seconds=30.0,
        **forward,
    )
    _report(
        folder,
        f"summary_forward.forward_month.{RUN_1}.1.json",
        2,
        config,
        run_id=EVIL,
        seconds=42.5,
        **forward,
    )
    _report(folder, f"summary_backfill.classify.{RUN_1}.1.json", 3, config, mode="classify", run_id="classify-1", seconds=12.0,
            accounts_by_case=cases(5, 0, 2))  # fmt: skip
    _report(folder, f"summary_backfill.case_i.{RUN_1}.1.json", 4, config, mode="case-i", run_id="case-i-1", seconds=20.0,
            details={"classification": "classify-1"})  # fmt: skip
    _report(folder, f"summary_backfill.case_iii.{RUN_1}.1.json", 5, config, mode="case-iii", run_id="case-iii-1", seconds=3.0,
            status="failed", exit_code=4, details={"classification": "classify-1"})  # fmt: skip
    _report(folder, f"summary_backfill.case_iii.{RUN_2}.2.json", 6, config, mode="case-iii", run_id="case-iii-2", seconds=25.0,
            details={"classification": "classify-1"})  # fmt: skip
    passed = {"checks": {"summary.unique": {"violations": 0, "rule": "one row", "examples": []}}, "violations": 0}
    _report(folder, f"summary_forward.quality_gate.{RUN_1}.1.json", 7, config, mode="check", run_id="check-old", seconds=8.0,
            details=passed)  # fmt: skip
    _report(folder, f"summary_backfill.classify.{RUN_2}.2.json", 8, config, mode="classify", run_id="classify-2", seconds=11.0,
            accounts_by_case=cases(1, 4, 0), dry_run=True)  # fmt: skip
    checks = {
        "summary.unique": {"violations": 0, "rule": "more than one summary row", "examples": []},
        "balance_am_history.shift": {"violations": 3, "rule": "does not continue", "examples": ["1 2024-02", "7 2024-02"]},
        "latest_summary.unexpected": {"violations": 1, "rule": "not the newest row", "examples": ["9 2024-04"]},
    }
    _report(folder, f"summary_forward.quality_gate.{RUN_2}.2.json", 9, config, mode="check", run_id="check-new", seconds=9.0,
            status="failed", exit_code=3, error="4 violation(s) of the table rules",
            details={"checks": checks, "violations": 4, "scope": {"start_month": "2024-02", "end_month": None}})  # fmt: skip
    # Another config whose name the first one prefixes: its reports must stay on its own page.
    _report(
        folder,
        f"summary_eu_forward.forward_month.{RUN_1}.1.json",
        10,
        other_config,
        mode="forward",
        run_id="eu-1",
        seconds=999.0,
    )
    (folder / f"summary_forward.forward_month.{RUN_2}.2.json").write_text('{"mode": "forw')  # a report being written


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Two configs (only `summary` has tables and reports), an embedded warehouse and a reports folder."""
    for variable in ("SUMMARY_WAREHOUSE", "SUMMARY_CATALOGS"):
        monkeypatch.delenv(variable, raising=False)
    warehouse, configs, reports = tmp_path / "warehouse", tmp_path / "configs", tmp_path / "reports"
    for folder in (warehouse, configs, reports):
        folder.mkdir()
    raw = json.loads(EXAMPLE.read_text())
    config, other = configs / "summary_config.json", configs / "summary_eu.json"
    config.write_text(json.dumps(raw))
    other.write_text(
        json.dumps(
            dict(
                raw,
                name="summary_eu",
                source_table="local.eu.accounts",
                destination_table="local.eu.summary",
                latest_history_table="local.eu.latest",
            )
        )
    )
    catalog = _catalog(warehouse)
    catalog.create_namespace("db")
    _month_table(catalog, "db.summary", [{"2024-01": 2, "2024-02": 5}, {"2024-01": 1, "2024-04": 2}])
    _month_table(catalog, "db.accounts_all", [SOURCE_RECORDS])
    _rejects_table(catalog, "db.summary_rejects", REJECTS)
    _write_reports(reports, config, other)
    monkeypatch.setenv("SUMMARY_REPORTS_DIR", str(reports))
    return {"warehouse": warehouse, "configs": configs, "reports": reports}


@pytest.fixture
def client(site):
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    return TestClient(create_app(configs_dir=site["configs"], warehouse=str(site["warehouse"]), require_login=False))


# --- reading the HTML -----------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag (name, attributes, the charts it is inside) and the text inside each chart's <text>."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.labels, self.chart, self.in_text = [], {}, None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self.chart = attrs.get("data-chart")
        self.in_text = tag == "text" and attrs.get("class") == "label"
        self.tags.append((tag, attrs, self.chart))

    def handle_endtag(self, tag):
        if tag == "svg":
            self.chart = None
        self.in_text = False

    def handle_data(self, data):
        if self.in_text:
            self.labels.setdefault(self.chart, []).append(data)

    def find(self, tag, chart=None, css=None):
        """Start tags ``tag`` inside chart ``chart`` whose class has every word of ``css``."""
        wanted = set((css or "").split())
        return [
            attrs
            for name, attrs, inside in self.tags
            if name == tag and chart in (None, inside) and wanted <= set(attrs.get("class", "").split())
        ]


# --- the figures ----------------------------------------------------------------------------------


def test_page_data_counts_months_from_partition_metadata(client):
    data = client.get("/page-data/summary").json()
    assert [(m["month"], m["summary_rows"], m["source_records"], m["missing_in_summary"]) for m in data["months"]] == [
        ("2024-01", 3, 4, False),
        ("2024-02", 5, 6, False),
        ("2024-03", 0, 7, True),
        ("2024-04", 2, 2, False),
    ]
    # the only note: the fixture's report still being written (named, so a file that stays that way is found)
    assert data["notes"] == [
        "1 report file(s) left out (larger than 1 MiB, not complete JSON, or not a stage's report): "
        f"summary_forward.forward_month.{RUN_2}.2.json"
    ]


def test_rejects_are_grouped_by_run_and_reason_newest_run_first(client):
    rejects = client.get("/page-data/summary").json()["rejects"]
    assert [(r["run_id"], r["reason"], r["records"]) for r in rejects] == [
        ("ingest-b", NULL_KEY, 3),
        (EVIL, "<b>bold</b>", 1),
        ("forward-a", NULL_KEY, 2),
        ("forward-a", BAD_MONTH, 1),
    ]
    assert rejects[0]["first_rejected_at"] == "2024-07-01 10:20:00Z"
    assert rejects[0]["last_rejected_at"] == "2024-07-01 10:22:00Z"


def test_backfills_gate_and_stage_times_come_from_this_configs_reports(client):
    data = client.get("/page-data/summary").json()
    assert [(b["run_id"], b["accounts_by_case"], b["dry_run"]) for b in data["backfills"]] == [
        ("classify-1", {"I": 5, "II": 0, "III": 2}, False),
        ("classify-2", {"I": 1, "II": 4, "III": 0}, True),
    ]
    # case-iii failed on its first try, succeeded on its second: the newest try counts
    assert data["backfills"][0]["case_stages"] == {"case-i": "ok", "case-iii": "ok"}
    assert data["backfills"][1]["case_stages"] == {}

    gate = data["quality_gate"]
    assert (gate["run_id"], gate["task_id"], gate["passed"], gate["violations"]) == ("check-new", "quality_gate", False, 4)
    assert gate["months_checked"] == "from 2024-02"
    assert [(b["rule"], b["violations"], b["examples"]) for b in gate["broken_rules"]] == [
        ("balance_am_history.shift", 3, ["1 2024-02", "7 2024-02"]),
        ("latest_summary.unexpected", 1, ["9 2024-04"]),
    ]

    runs = data["stage_runs"]
    assert [(r["task_id"], r["try_number"], r["mode"], r["seconds"]) for r in runs] == [
        ("initial_load.forward_2024_01", 1, "forward", 30.0),
        ("forward_month", 1, "forward", 42.5),
        ("classify", 1, "classify", 12.0),
        ("case_i", 1, "case-i", 20.0),
        ("case_iii", 1, "case-iii", 3.0),
        ("case_iii", 2, "case-iii", 25.0),
        ("quality_gate", 1, "check", 8.0),
        ("classify", 2, "classify", 11.0),
        ("quality_gate", 2, "check", 9.0),
    ]  # no summary_eu report (999 s), no half-written file
    assert runs[1]["phase_seconds"] == {"read": 2.5, "commit": 4.0}
    assert runs[0]["finished_at"] == "2024-07-01 12:01:00Z"


def test_a_config_without_tables_or_reports_has_empty_sections(client):
    data = client.get("/page-data/summary_eu").json()
    assert (data["months"], data["backfills"], data["rejects"], data["quality_gate"]) == ([], [], [], None)
    assert [r["seconds"] for r in data["stage_runs"]] == [999.0]
    assert data["notes"] == []


def test_an_empty_warehouse_and_no_reports_folder_give_an_empty_page(site, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from summary_airflow.status_api import create_app

    monkeypatch.setenv("SUMMARY_REPORTS_DIR", str(tmp_path / "absent"))
    empty = tmp_path / "empty_warehouse"
    app = create_app(configs_dir=site["configs"], warehouse=str(empty), require_login=False)
    data = TestClient(app).get("/page-data/summary").json()
    assert (data["months"], data["backfills"], data["rejects"], data["stage_runs"], data["notes"]) == ([], [], [], [], [])
    page = TestClient(app).get("/page/summary")
    assert page.status_code == 200 and "No months yet in either table." in page.text
    assert not empty.exists(), "reading must not create the catalog"


def test_partition_counts_subtract_position_deletes():
    """A merge-on-read month: its deleted rows are still in its data files until maintenance compacts them."""
    import pyarrow as pa

    from summary_airflow.pipeline_page import counts_per_partition

    partitions = pa.table(
        {
            "partition": [{"m": "2024-01"}, {"m": "2024-01"}, {"m": "2024-02"}, {"m": None}, {"other": "x"}],
            "spec_id": [1, 1, 1, 1, 0],  # spec 0 (an older one) is not partitioned by m
            "record_count": [10, 4, 7, 2, 100],
            "position_delete_record_count": [3, 0, 0, 0, 1],
        }
    )
    counts = counts_per_partition(partitions, "m", {1})
    assert counts.rows == {"2024-01": 11, "2024-02": 7, "(null)": 2, "(not by month)": 99}
    assert counts.data_records == {"2024-01": 14, "2024-02": 7, "(null)": 2, "(not by month)": 100}


# --- the page -------------------------------------------------------------------------------------


def test_the_months_chart_draws_one_bar_per_figure_and_flags_the_missing_month(client):
    response = client.get("/page/summary")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = Elements(response.text)
    summary_bars = page.find("rect", "months", "bar summary")
    source_bars = page.find("rect", "months", "bar source")
    assert len(summary_bars) == 3 and len(source_bars) == 4  # 2024-03 has no summary bar
    assert page.labels["months"] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert [g["data-label"] for g in page.find("g", "months", "flagged")] == ["2024-03"]
    assert len(page.find("rect", "months", "flag")) == 1
    # the axis tops at 8 (steps of 2 over a largest value of 7): 7 source records are 7/8 of 220 px
    heights = {float(r["height"]) for r in source_bars}
    assert heights == {220 * 4 / 8, 220 * 6 / 8, 220 * 7 / 8, 220 * 2 / 8}
    assert "Source records but no summary rows: 2024-03" in response.text


def test_the_page_shows_backfills_rejects_gate_and_stage_times(client):
    text = client.get("/page/summary").text
    page = Elements(text)
    # classify-1: Case I 5, Case III 2; classify-2: Case I 1, Case II 4 (zero bars are not drawn)
    assert len(page.find("rect", "backfills", "bar case-I")) == 2
    assert len(page.find("rect", "backfills", "bar case-II")) == 1
    assert len(page.find("rect", "backfills", "bar case-III")) == 1
    assert len(page.find("rect", "stages", "bar")) == 9
    assert len(page.find("rect", "stages", "bar check")) == 2
    # failed: case_iii try 1 and the last quality gate
    assert [r["height"] for r in page.find("rect", "stages", "bar failed")] == [f"{220 * 3 / 60:.1f}", f"{220 * 9 / 60:.1f}"]
    assert "balance_am_history.shift" in text and "latest_summary.unexpected" in text and "1 2024-02; 7 2024-02" in text
    assert '<span class="failed">failed</span>: 4 violation(s) over 3 rule(s), months from 2024-02' in text
    assert "summary.unique</code>" not in text, "a rule without violations is not listed as broken"
    assert "ingest-b" in text and "rpt_as_of_mo (partition_column) is not a YYYY-MM month: &quot;2024-13&quot;" in text


def test_strings_from_data_are_escaped(client):
    text = client.get("/page/summary").text
    assert EVIL not in text and "<b>bold</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<script" not in text, "the page carries no script at all"


def test_the_all_configs_page_has_one_section_each_and_unknown_names_are_404(client):
    text = client.get("/page").text
    assert [s["id"] for s in Elements(text).find("section")] == ["cfg-summary", "cfg-summary_eu"]
    assert 'href="./page/summary"' in text and 'href="./page-data/summary_eu"' in text
    assert 'href="../page/summary"' in client.get("/page/summary").text
    assert client.get("/page/nope").status_code == 404
    assert client.get("/page-data/nope").status_code == 404


def test_an_invalid_config_is_listed_not_fatal(client, site):
    (site["configs"] / "broken.json").write_text("{not json")
    response = client.get("/page")
    assert response.status_code == 200
    assert "Configs not shown (invalid)" in response.text and "broken.json" in response.text
    assert len(Elements(response.text).find("section")) == 2


def test_the_plugin_puts_the_page_in_the_ui_navigation():
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    external_views, _ = plugins_manager._get_ui_plugins()
    ours = [v for v in external_views if v.get("url_route") == "summary-pipeline"]
    assert len(ours) == 1
    view = ExternalViewResponse.model_validate(ours[0])  # the api-server's own serializer of the entry
    assert (view.href, view.destination, view.category) == ("/summary-pipeline/page", "nav", "browse")
    apps = {a["url_prefix"] for a in plugins_manager.get_fastapi_plugins()[0]}
    assert "/summary-pipeline" in apps


# --- the screenshot ---------------------------------------------------------------------------------


def test_the_png_reader_undoes_every_filter():
    """Rows encoded with each of PNG's five filters decode to the pixels they were made from."""
    pixels = [bytes([(x * 37 + y * 91 + c * 53) % 256 for x in range(4) for c in range(3)]) for y in range(5)]
    raw, previous = b"", bytes(12)
    for kind, row in enumerate(pixels):
        filtered = bytes((row[i] - _predictor(kind, row, previous, i)) % 256 for i in range(12))
        raw += bytes([kind]) + filtered
        previous = row
    assert unfilter(zlib.decompress(zlib.compress(raw)), 12, 5, 3) == pixels


def _predictor(kind, row, previous, i, bpp=3):
    """What PNG filter ``kind`` predicts byte ``i`` of ``row`` from (the spec's definitions, written out)."""
    left, up, up_left = (row[i - bpp] if i >= bpp else 0), previous[i], (previous[i - bpp] if i >= bpp else 0)
    return [0, left, up, (left + up) // 2, _paeth(left, up, up_left)][kind]


def _paeth(a, b, c):
    p = a + b - c
    return min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]


@pytest.mark.skipif(browser() is None, reason="no chromium on PATH: apt-get install chromium (.ci/run does it as root)")
def test_a_headless_browser_draws_the_charts(client, tmp_path):
    from summary_airflow.pipeline_page import FLAG_COLOUR, SOURCE_COLOUR, SUMMARY_COLOUR

    html_file = tmp_path / "pipeline_page.html"
    html_file.write_text(client.get("/page/summary").text, encoding="utf-8")
    png = screenshot(html_file, tmp_path / "pipeline_page.png", width=1400, height=2000)
    width, height, _ = read_png(png)
    assert (width, height) == (1400, 2000)
    colours = colour_counts(png)
    assert colours.get("#ffffff", 0) < width * height * 0.99, "the page is not blank"
    # 3 summary and 4 source bars of ~23 px width and 55..192 px height; a 90 x 220 px band behind 2024-03
    assert colours.get(SUMMARY_COLOUR, 0) > 2_000
    assert colours.get(SOURCE_COLOUR, 0) > 3_000
    assert colours.get(FLAG_COLOUR, 0) > 10_000
    assert colours.get("#b279a2", 0) > 500, "Case III bar of classify-1"
