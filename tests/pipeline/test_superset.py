"""The Superset dashboards on the demo's published marts, driven through Superset itself.

`relanalytics bi superset` sets Superset up in `.venv-superset` (installed here if missing, as the
command does), imports the bundle against the demo's published marts and serves it on 127.0.0.1.
Every chart's saved query then runs through Superset's API and must return rows, and each
dashboard is opened in headless Chromium, with no host name resolving and everything but
loopback sent to a closed port, where every chart must render without an error.

Installing Superset needs the package registry; where it cannot be installed, or Chromium is
missing, the test skips, unless RELANALYTICS_REQUIRE_SUPERSET (or RELANALYTICS_REQUIRE_CHROMIUM)
is set, as CI does, where it fails. With RELANALYTICS_SUPERSET_SCREENSHOTS=DIR it also writes each
dashboard's screenshot into DIR (how docs/superset-*.png are made).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import requests
import yaml
from conftest import project_free_environ

from relanalytics_pipeline.cli import superset

AS_OF = "2026-03-31"
ACTIVITIES = 3_000
BUNDLE_CHARTS = {
    yaml.safe_load(path.read_text())["uuid"]: yaml.safe_load(path.read_text())["slice_name"]
    for path in (superset.BUNDLE / "charts").glob("*.yaml")
}
DASHBOARDS = {"relationships": "Relationships", "record-analytics": "Record analytics",
              "deal-tracking": "Deal tracking"}  # fmt: skip


def bundle(folder: str) -> dict[str, dict]:
    return {
        path.stem: yaml.safe_load(path.read_text())
        for path in sorted((superset.BUNDLE / folder).rglob("*.yaml"))
    }


def test_every_chart_has_a_title_axis_titles_labelled_columns_and_a_saved_query():
    datasets = {config["uuid"]: config for config in bundle("datasets").values()}
    for key, chart in bundle("charts").items():
        params, dataset = chart["params"], datasets[chart["dataset_uuid"]]
        assert chart["slice_name"].strip(), key
        # Saved with the query the frontend builds, so that the API (and reports) can run it.
        assert json.loads(chart["query_context"])["queries"], key
        if chart["viz_type"] == "bubble_v2":
            assert params["x_axis_label"] and params["y_axis_label"], key
        elif chart["viz_type"].startswith("echarts_timeseries"):
            assert params["x_axis_title"] and params["y_axis_title"], key
        else:
            assert chart["viz_type"] == "table", key
            labels = {c["column_name"]: c["verbose_name"] for c in dataset["columns"]}
            assert all(labels[column] for column in params["all_columns"]), key
        # People by name: no chart shows or groups by an id of a user.
        shown = [*params.get("all_columns", []), *params.get("groupby", []),
                 params.get("entity"), params.get("series")]  # fmt: skip
        assert not {"owner_id", "user_id", "last_contacted_by"} & set(shown), key


def test_the_bundle_zip_reads_the_given_database_and_nothing_else(tmp_path):
    import io
    import zipfile

    published = tmp_path / "published" / "marts.duckdb"
    published.parent.mkdir()
    published.touch()
    uri = superset.duckdb_uri(published)
    assert uri == f"duckdb:///{published}?access_mode=read_only"
    with zipfile.ZipFile(io.BytesIO(superset.bundle_zip(uri))) as archive:
        databases = [name for name in archive.namelist() if "/databases/" in name]
        assert len(databases) == 1
        assert yaml.safe_load(archive.read(databases[0]))["sqlalchemy_uri"] == uri
        assert len(archive.namelist()) == len(list(superset.BUNDLE.rglob("*.yaml")))
    with pytest.raises(superset.SupersetSetupError, match="run `relanalytics demo`"):
        superset.duckdb_uri(tmp_path / "missing.duckdb")


def require(variable: str, reason: str):
    if os.environ.get(variable):
        pytest.fail(f"{reason} ({variable} is set)")
    pytest.skip(f"{reason}; set {variable}=1 to make this a failure")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((superset.HOST, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo's publication, and `relanalytics bi superset` serving it: (base URL, password)."""
    home = tmp_path_factory.mktemp("superset") / "home"
    environ = project_free_environ(RELANALYTICS_HOME=str(home), RELANALYTICS_AS_OF=AS_OF)
    relanalytics = str(Path(sys.executable).with_name("relanalytics"))

    # Superset's install (mostly downloads) runs while the demo's pipeline uses the cores.
    install_errors: list[Exception] = []

    def install():
        try:
            superset.ensure_venv(log=lambda _: None)
        except Exception as error:  # reported below, in the test's thread
            install_errors.append(error)

    installer = threading.Thread(target=install)
    installer.start()
    demo = subprocess.run(
        [relanalytics, "demo", "--activities", str(ACTIVITIES)],
        env=environ, capture_output=True, text=True, cwd=home.parent,
    )  # fmt: skip
    installer.join()
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    if install_errors:
        require(
            "RELANALYTICS_REQUIRE_SUPERSET", f"Superset could not be installed: {install_errors[0]}"
        )

    port = free_port()
    log = (home / "superset.log").open("w")
    process = subprocess.Popen(
        [relanalytics, "bi", "superset", "--port", str(port)],
        env=environ, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Stop it with"):
                break
        out = "".join(printed)
        base = f"http://{superset.HOST}:{port}"
        assert f"Open {base}/dashboard/list/" in out, out + (home / "superset.log").read_text()
        password = re.search(r"Log in as admin with the password (\S+)", out).group(1)
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{base}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, (home / "superset.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "Superset did not answer within 180 s"
            time.sleep(1)
        yield base, password, home / "published" / "marts.duckdb"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def api(base: str, password: str) -> requests.Session:
    session = requests.Session()
    login = session.post(
        f"{base}/api/v1/security/login",
        json={"username": superset.ADMIN, "password": password, "provider": "db"},
    )
    assert login.ok, login.text
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return session


def test_every_charts_query_returns_rows_through_the_api(server):
    base, password, published = server
    session = api(base, password)
    listing = session.get(f"{base}/api/v1/chart/", params={"q": "(page_size:100)"}).json()
    charts = {chart["id"]: chart["slice_name"] for chart in listing["result"]}
    assert sorted(charts.values()) == sorted(BUNDLE_CHARTS.values())
    rows, data = {}, {}
    for chart_id, name in charts.items():
        response = session.get(f"{base}/api/v1/chart/{chart_id}/data/")
        assert response.status_code == 200, f"{name}: {response.text[:500]}"
        rows[name] = sum(result["rowcount"] for result in response.json()["result"])
        data[name] = response.json()["result"][0]["data"]
    assert [name for name, count in rows.items() if count == 0] == []
    # The lists and the deals through Superset against the same marts read directly.
    with duckdb.connect(str(published), read_only=True) as marts:
        records = dict(
            marts.execute(
                "SELECT record_type, count(*) FROM relationship_kpis WHERE period = 'trailing' "
                "GROUP BY record_type"
            ).fetchall()
        )
        deals = marts.execute(
            "SELECT d.stage, d.name, d.company_name, d.estimated_close_date, d.health_status, "
            "u.user_name, d.estimated_value FROM deal_tracking AS d "
            "JOIN (SELECT DISTINCT user_id, user_name FROM record_colleagues) AS u "
            "ON u.user_id = d.owner_id"
        ).fetchall()
    lists = {"opportunity": "Opportunities", "lead": "Leads", "account": "Accounts",
             "contact": "Contacts"}  # fmt: skip
    assert {
        record_type: rows[f"{title}: relationship KPIs and health (trailing period)"]
        for record_type, title in lists.items()
    } == records
    assert rows["Open deals: click a name to open the record"] == len(deals)
    # Each bubble: its stage (the colour), a tooltip naming the deal, company, close date, health
    # and owner by name, and its value as the size.
    bubbles = data["Deal tracking: close date × health, bubble size = estimated value"]
    assert len(bubbles) == len(deals)
    for stage, name, company, close, health, owner, value in deals:
        (bubble,) = [b for b in bubbles if b["deal"].startswith(f"{name} — {company} — ")]
        assert bubble["stage"] == stage
        assert f"closes {close}" in bubble["deal"] and f"({health})" in bubble["deal"]
        assert bubble["deal"].endswith(f"owner {owner}")
        assert bubble["Estimated value"] == value

    dashboards = session.get(f"{base}/api/v1/dashboard/").json()["result"]
    assert sorted(d["dashboard_title"] for d in dashboards) == sorted(DASHBOARDS.values())


def chromium() -> str:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        require("RELANALYTICS_REQUIRE_CHROMIUM", "Chromium is missing")
    return found


def test_every_dashboard_renders_every_chart_without_an_error(server, tmp_path):
    from playwright.sync_api import sync_playwright

    base, password, _ = server
    session = api(base, password)
    shots = Path(os.environ.get("RELANALYTICS_SUPERSET_SCREENSHOTS") or tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(),
            # No name resolves, and any address but loopback goes to a closed port.
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  "--proxy-server=127.0.0.1:9"],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1600, "height": 1200})
        page = context.new_page()
        page.goto(f"{base}/login/")
        page.fill("#username", superset.ADMIN)
        page.fill("#password", password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/superset/welcome/**")
        page.close()

        for slug, title in DASHBOARDS.items():
            charts = session.get(f"{base}/api/v1/dashboard/{slug}/charts").json()["result"]
            expected = {chart["id"]: chart["slice_name"] for chart in charts}
            answered: dict[int, dict] = {}

            def answer(response, answered=answered):
                if "/api/v1/chart/data" not in response.url:
                    return
                form_data = json.loads(response.request.post_data).get("form_data", {})
                if form_data.get("slice_id"):
                    answered[form_data["slice_id"]] = {"status": response.status, **response.json()}

            page = context.new_page()
            page.on("response", answer)
            page.goto(f"{base}/superset/dashboard/{slug}/")
            # Until every chart drew (an ECharts canvas, a table's rows) or showed an error.
            settled = "canvas, table tbody tr, .ant-alert-error, [role=alert]"
            page.wait_for_function(
                "([n, settled]) => [...document.querySelectorAll('.dashboard-chart')]"
                ".filter(c => c.querySelector(settled)).length >= n",
                arg=[len(expected), settled],
                timeout=120_000,
            )
            page.wait_for_load_state("networkidle")

            assert set(answered) == set(expected), f"{title}: charts that never queried"
            failed = {
                expected[chart_id]: result
                for chart_id, result in answered.items()
                if result["status"] != 200 or not any(r["rowcount"] for r in result["result"])
            }
            assert failed == {}, title
            errors = page.locator(
                ".dashboard-chart .ant-alert-error, .dashboard-chart [role=alert]"
            ).all_inner_texts()
            assert errors == [], f"{title}: {errors}"
            drawn = page.locator(".dashboard-chart").evaluate_all(
                "charts => charts.filter(c => c.querySelector('canvas, table tbody tr')).length"
            )
            assert drawn == len(expected), f"{title}: {drawn} of {len(expected)} charts drawn"

            # The whole dashboard in one window, as tall as its content, for the screenshot.
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1600, "height": height})
            page.wait_for_timeout(1500)
            page.screenshot(path=shots / f"superset-{slug}.png")
            page.close()
        browser.close()
