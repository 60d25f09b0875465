"""great-expectations' data docs without a network: the pages it writes load their styles, scripts
and logo from CDNs (Bootstrap, Font Awesome, jQuery, bootstrap-table, vega); offline, the index is
unstyled and its lists stay empty. After GE has written the docs, each page is pointed at copies
of the same packages kept in `data_docs_assets/` (see its README), copied next to the docs.

GE's templates cannot be overridden (its own template folder comes first in its loader), so the
pages are rewritten once written. A remote file with no copy here stops the build: a
great-expectations upgrade that loads something new must bring its copy along.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS_DIR = Path(__file__).with_name("data_docs_assets")
# Where the copies go inside the docs folder, beside GE's own static files.
LOCAL_DIR = "static/vendor"
# GE's own images, which it copies into the docs: its logo, also shown in place of the dark-mode
# logo it keeps no copy of.
GE_IMAGES = "static/images"
GE_LOGO = f"{GE_IMAGES}/logo-long.png"

CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
JSDELIVR = "https://cdn.jsdelivr.net/npm/"
TABLE = "https://unpkg.com/bootstrap-table@1.19.1/dist/"
# The pages ask for the stylesheet of 1.19.0's filter-control extension (minified or not): the
# same rules as 1.19.1's.
TABLE_FILTER_CSS = "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
GE_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# Every remote file great-expectations 1.24's pages load, and its copy in data_docs_assets/.
VENDORED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        "bootstrap@4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        "bootstrap@4.3.1/js/bootstrap.min.js",
    f"{CDNJS}popper.js/1.12.9/umd/popper.min.js": "popper.js@1.12.9/umd/popper.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/jquery.min.js",
    f"{TABLE}bootstrap-table.min.css": "bootstrap-table@1.19.1/bootstrap-table.min.css",
    f"{TABLE}bootstrap-table.min.js": "bootstrap-table@1.19.1/bootstrap-table.min.js",
    f"{TABLE}extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    f"{TABLE_FILTER_CSS}bootstrap-table-filter-control.css":
        "bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    f"{TABLE_FILTER_CSS}bootstrap-table-filter-control.min.css":
        "bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    f"{CDNJS}bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker@1.9.0/css/bootstrap-datepicker.min.css",
    f"{CDNJS}bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker@1.9.0/js/bootstrap-datepicker.min.js",
    f"{JSDELIVR}@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark@1.1.0/css/bootstrap-prefers-dark.min.css",
    f"{CDNJS}font-awesome/6.6.0/css/all.min.css": "fontawesome-free@6.6.0/css/all.min.css",
    # A major version on the CDN is its latest release: the one current when copied.
    f"{JSDELIVR}vega@5": "vega@5.33.1/vega.min.js",
    f"{JSDELIVR}vega-lite@5": "vega-lite@5.23.0/vega-lite.min.js",
    f"{JSDELIVR}vega-embed@6": "vega-embed@6.29.0/vega-embed.min.js",
}  # fmt: skip
# Each remote file's path inside the docs folder.
LOCAL_COPIES = {url: f"{LOCAL_DIR}/{path}" for url, path in VENDORED.items()} | {
    f"{GE_WEB_ASSETS}logo-long.png": GE_LOGO,
    f"{GE_WEB_ASSETS}full_logo_dark.png": GE_LOGO,
}

# What a page loads: a script's, stylesheet's or image's source, or a url() in its style sheets.
# Links a reader follows (<a href>) stay as they are.
_LOADING_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_STYLE = re.compile(r"<style\b[^>]*>.*?</style>", re.IGNORECASE | re.DOTALL)
_TAG_URL = re.compile(r"""\b(?:src|href)\s*=\s*(["'])(https?://.*?)\1""", re.IGNORECASE)
# GE's own static files, which a validation page's favicon link misses by a folder (GE computes its
# depth from the suite's name one level short).
_GE_STATIC = re.compile(r"""\b((?:src|href)\s*=\s*["'])(?:\./|(?:\.\./)+)(static/images/[^"']+)""")
_CSS_URL = re.compile(r"""url\(\s*(["']?)(https?://.*?)\1\s*\)""", re.IGNORECASE)
# Integrity and CORS attributes would make the browser refuse a file read from disk.
_CROSS_ORIGIN = re.compile(r"""\s+(?:integrity|crossorigin)\s*=\s*(["']).*?\1""", re.IGNORECASE)


class MissingLocalCopy(RuntimeError):
    pass


def use_local_assets(docs_dir: Path) -> None:
    """Copy the assets into `docs_dir` and point every page of it at them."""
    shutil.copytree(ASSETS_DIR, docs_dir / LOCAL_DIR, dirs_exist_ok=True, ignore=_not_served)
    for page in docs_dir.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        rewritten = _point_at_local_copies(html, page, docs_dir)
        if rewritten != html:
            page.write_text(rewritten, encoding="utf-8")


def _not_served(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "README.md"]


def _point_at_local_copies(html: str, page: Path, docs_dir: Path) -> str:
    def local(url: str) -> str:
        # GE appends a cache-busting query to its logo's address.
        path = LOCAL_COPIES.get(url.split("?")[0])
        if path is None:
            raise MissingLocalCopy(
                f"{page} loads {url}, which has no local copy in {ASSETS_DIR}: add the file there "
                f"and its address to LOCAL_COPIES in {__name__}"
            )
        return relative(path)

    def relative(path: str) -> str:
        return Path(os.path.relpath(docs_dir / path, page.parent)).as_posix()

    def tag(match: re.Match) -> str:
        text = _GE_STATIC.sub(lambda m: m[1] + relative(m[2]), match.group(0))
        if not _TAG_URL.search(text):
            return text
        text = _TAG_URL.sub(lambda m: m.group(0).replace(m.group(2), local(m.group(2))), text)
        return _CROSS_ORIGIN.sub("", text)

    def style(match: re.Match) -> str:
        return _CSS_URL.sub(lambda m: m.group(0).replace(m.group(2), local(m.group(2))), match[0])

    return _STYLE.sub(style, _LOADING_TAG.sub(tag, html))
