"""Build the site and serve it as a static host would (nginx in production, deploy/), for local runs and tests:
folder index pages, and the 404 page of the language folder the missing path is in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.wrappers import Request, Response

PROJECT = Path(__file__).resolve().parent.parent


def build_site(site_dir: str | Path, site_url: str, config_file: str | Path = PROJECT / "mkdocs.yml"):
    """Run `mkdocs build --strict` in a child process (mkdocs-static-i18n keeps state between builds) and
    return what it printed; `site_url` is where the site will be served, since hreflang links are absolute."""
    config_file = Path(config_file)
    env = dict(os.environ, SITE_URL=site_url, NO_MKDOCS_2_WARNING="1")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config_file)]
    return subprocess.run(
        [*command, "--site-dir", str(site_dir)],
        cwd=config_file.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _not_found(site_dir: Path):
    """A WSGI app answering 404 with the page of the closest language folder."""

    def app(environ, start_response):
        path = Request(environ).path
        first = path.strip("/").split("/", 1)[0]
        page = site_dir / first / "404.html"
        if not first or not page.is_file():
            page = site_dir / "404.html"
        response = Response(page.read_bytes(), status=404, content_type="text/html; charset=utf-8")
        return response(environ, start_response)

    return app


def static_site(site_dir: str | Path):
    """The built site at `/`, with a language-aware 404 for missing files."""
    site_dir = Path(site_dir).resolve()
    app = SharedDataMiddleware(_not_found(site_dir), {"/": str(site_dir)}, cache=False)

    def serve(environ, start_response):
        # A folder is served by its index page, as nginx's `index` does.
        path = environ.get("PATH_INFO", "/")
        if path.endswith("/") and (site_dir / path.lstrip("/") / "index.html").is_file():
            environ = dict(environ, PATH_INFO=path + "index.html")
        return app(environ, start_response)

    return serve
