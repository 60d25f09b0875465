"""great-expectations' data docs load nothing from the network: every script, style sheet, font
and image a page loads is a file in the docs folder.

The pages are read with the standard library's HTML parser, not with the rewriting code's
patterns; then the index is rendered by headless Chromium with every host name unresolvable.
Chromium is the machine's: where it is missing that test skips, unless
RELANALYTICS_REQUIRE_CHROMIUM is set (as CI does, which installs it), where it fails.
"""

import json
import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
from support.data_docs import CSS_URL, loads

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.quality.data_docs import MissingLocalCopy, use_local_assets
from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.settings import PROJECT_ROOT

VENDOR = "static/vendor"
# The entities with a crm suite: each of their latest loads gets a validation page.
CRM_SUITES = sorted((PROJECT_ROOT / "expectations" / "crm").glob("*.json"))
# What the index page loads, as GE 1.24's templates name it (worked out from the templates).
INDEX_LOADS = {
    f"{VENDOR}/bootstrap@4.3.1/css/bootstrap.min.css",
    f"{VENDOR}/bootstrap@4.3.1/js/bootstrap.min.js",
    f"{VENDOR}/popper.js@1.12.9/umd/popper.min.js",
    f"{VENDOR}/jquery@3.7.1/jquery.min.js",
    f"{VENDOR}/bootstrap-table@1.19.1/bootstrap-table.min.css",
    f"{VENDOR}/bootstrap-table@1.19.1/bootstrap-table.min.js",
    f"{VENDOR}/bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    f"{VENDOR}/bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    f"{VENDOR}/bootstrap-datepicker@1.9.0/css/bootstrap-datepicker.min.css",
    f"{VENDOR}/bootstrap-datepicker@1.9.0/js/bootstrap-datepicker.min.js",
    f"{VENDOR}/bootstrap-dark@1.1.0/css/bootstrap-prefers-dark.min.css",
    f"{VENDOR}/fontawesome-free@6.6.0/css/all.min.css",
    f"{VENDOR}/vega@5.33.1/vega.min.js",
    f"{VENDOR}/vega-lite@5.23.0/vega-lite.min.js",
    f"{VENDOR}/vega-embed@6.29.0/vega-embed.min.js",
    "static/images/favicon.ico",
    "static/images/logo-long.png",
}


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from conftest import write_hand_made_landing

    from relanalytics_pipeline.cli.main import main

    folder = tmp_path_factory.mktemp("docs")
    landing = write_hand_made_landing(folder / "landing")
    for entity in ENTITIES:
        ingest_entity(folder / "warehouse.duckdb", landing, entity, run_id="run-1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELANALYTICS_HOME", str(folder))
        patch.delenv("RELANALYTICS_WAREHOUSE", raising=False)
        assert main(["data-docs", "--out", str(folder / "docs")]) == 0
    return folder / "docs"


def test_every_page_loads_only_files_of_the_docs_folder(docs):
    pages = sorted(docs.rglob("*.html"))
    # The index, a page per suite (crm and mart suites) and per validated entity (those with one).
    suites = list((PROJECT_ROOT / "expectations").rglob("*.json"))
    assert len(pages) == 1 + len(suites) + len(CRM_SUITES)
    for page in pages:
        found = loads(page)
        assert [u for u in found.urls if urlsplit(u).scheme or u.startswith("//")] == [], page
        assert [u for u in found.urls if not (page.parent / u).is_file()] == [], page
        assert found.cross_origin == [], page


def test_the_index_loads_the_styles_scripts_and_fonts_of_the_cdn_pages(docs):
    index = docs / "index.html"
    assert {(index.parent / u).resolve() for u in loads(index).urls} == {
        (docs / path).resolve() for path in INDEX_LOADS
    }
    # Font Awesome's style sheet finds its fonts beside it.
    style = docs / VENDOR / "fontawesome-free@6.6.0/css/all.min.css"
    fonts = {u for u in CSS_URL.findall(style.read_text()) if u.endswith(".woff2")}
    assert len(fonts) == 4 and all((style.parent / u).is_file() for u in fonts)


def test_a_page_loading_a_file_with_no_local_copy_stops_the_build(tmp_path):
    page = tmp_path / "index.html"
    link = '<a href="https://greatexpectations.io">Great Expectations</a>'
    page.write_text(f'<script src="https://cdn.example/new.js"></script>{link}')
    with pytest.raises(MissingLocalCopy, match="loads https://cdn.example/new.js, which has no"):
        use_local_assets(tmp_path)
    # A link a reader follows is no load: it stays.
    page.write_text(link)
    use_local_assets(tmp_path)
    assert page.read_text() == link


# Run in the index page once it has loaded: what rendered, as the page's title.
PROBE = """<script>
window.addEventListener("load", () => document.fonts.ready.then(() => {
  document.title = JSON.stringify({
    rows: document.querySelectorAll("tr[data-index]").length,
    navbar: getComputedStyle(document.querySelector("nav.navbar")).position,
    fonts: [...document.fonts].filter(f => f.status === "loaded").map(f => f.family),
    vega: typeof vegaEmbed,
  });
}));
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("RELANALYTICS_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required here (RELANALYTICS_REQUIRE_CHROMIUM) but missing")
        pytest.skip("no chromium; set RELANALYTICS_REQUIRE_CHROMIUM=1 to make this a failure")
    return found


def test_the_index_renders_in_a_browser_with_no_network(docs, tmp_path):
    browser = chromium()
    probe = docs / "probe.html"  # beside the index, so that its relative paths hold
    probe.write_text((docs / "index.html").read_text().replace("</body>", f"{PROBE}</body>"))
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
        f"--user-data-dir={tmp_path}", "--dump-dom", probe.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>(\{.*?\})</title>", result.stdout)
    assert title, result.stdout[-2000:] + result.stderr[-2000:]
    rendered = json.loads(title.group(1).replace("&quot;", '"'))
    # bootstrap-table filled both lists (a validation per crm suite; the suites, 10 to a page),
    # Bootstrap's style sheet made the bar sticky, Font Awesome's font drew the status icons, vega
    # loaded.
    assert rendered["rows"] == len(CRM_SUITES) + 10
    assert rendered["navbar"] == "sticky"
    assert "Font Awesome 6 Free" in rendered["fonts"]
    assert rendered["vega"] == "function"
