"""What a data docs page loads, read with the standard library's HTML parser (not with the
rewriting code's patterns)."""

import re
from html.parser import HTMLParser
from pathlib import Path

CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


class Loads(HTMLParser):
    """What a page loads: script, style sheet, icon and image sources, url()s of its styles; and
    the attributes that would make a browser refuse a file read from disk."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.cross_origin: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        source = {"script": "src", "img": "src", "link": "href"}.get(tag)
        if source and attrs.get(source):
            self.urls.append(attrs[source])
            if "integrity" in attrs or "crossorigin" in attrs:
                self.cross_origin.append(attrs[source])
        self.urls += CSS_URL.findall(attrs.get("style") or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += CSS_URL.findall(data)


def loads(page: Path) -> Loads:
    parser = Loads()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser
