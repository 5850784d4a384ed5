"""Data Docs that work offline: great-expectations' pages load Bootstrap, jQuery,
bootstrap-table, Font Awesome and Vega from public CDNs, so without a network they
render blank. After each build, every page's CDN links are pointed at copies shipped in
`quality/docs_assets/` (licences in its LICENSES.txt) and copied into the site; links to
GX's documentation stay links, the remote logo (an image and a style's url()) goes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).parent / "docs_assets"
VENDOR = "static/capflow-vendor"  # inside the site

# How a CDN URL that GX 1.x writes ends -> the shipped file.
CDN_FILES = {
    "/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "/jquery-3.7.1.min.js": "js/jquery.min.js",
    "/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "/filter-control/bootstrap-table-filter-control.min.css":
        "css/bootstrap-table-filter-control.min.css",
    "/filter-control/bootstrap-table-filter-control.css":
        "css/bootstrap-table-filter-control.min.css",
    "/filter-control/bootstrap-table-filter-control.min.js":
        "js/bootstrap-table-filter-control.min.js",
    "/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "css/bootstrap-datepicker.min.css",
    "/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "js/bootstrap-datepicker.min.js",
    "/font-awesome/6.6.0/css/all.min.css": "css/fontawesome-all.min.css",
    "/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "css/bootstrap-prefers-dark.min.css",
    "/npm/vega@5": "js/vega.min.js",
    "/npm/vega-lite@5": "js/vega-lite.min.js",
    "/npm/vega-embed@6": "js/vega-embed.min.js",
}  # fmt: skip
_ATTR = re.compile(r'(?P<attr>\b(?:src|href))="(?P<url>https?://[^"]+)"')
_LOGO = re.compile(r'<img[^>]*src="https://great-expectations-web-assets[^"]*"[^>]*>')
_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)")  # GX's dark-mode logo, in a style


class RemoteAsset(ValueError):
    """A page still loads a script or style from the network (a GX upgrade moved it)."""


def _local(url: str) -> str | None:
    path = url.split("?", 1)[0]
    return next((f for end, f in CDN_FILES.items() if path.endswith(end)), None)


def make_offline(site: Path) -> int:
    """Point every page of the site at the shipped copies; returns the pages rewritten.
    Raises RemoteAsset for a script or stylesheet URL it does not know."""
    vendor = site / VENDOR
    shutil.copytree(ASSETS, vendor, dirs_exist_ok=True)
    rewritten = 0
    for page in site.rglob("*.html"):
        if vendor in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        prefix = os.path.relpath(vendor, page.parent).replace(os.sep, "/")

        def local(match: re.Match[str], page: Path = page, prefix: str = prefix) -> str:
            url = match.group("url")
            target = _local(url)
            if target is not None:
                return f'{match.group("attr")}="{prefix}/{target}"'
            if match.group("attr") == "src" or url.endswith((".css", ".js")):
                raise RemoteAsset(f"{page.name} loads {url}: add it to quality/docs_offline.py")
            return match.group(0)  # a link to read, not an asset to load

        new = _ATTR.sub(local, _CSS_URL.sub("none", _LOGO.sub("", text)))
        if new != text:
            page.write_text(new, encoding="utf-8")
            rewritten += 1
    return rewritten
