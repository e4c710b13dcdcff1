"""Lighthouse (mobile, default throttling) on every page, served by the deploy nginx config.

Prints one row per page: the four category scores, the bytes transferred on
first load, compressed (Material's scripts and the search index wait for a
first interaction, so they are not among them), and the simulated paint and
blocking times behind the performance score.

    .venv/bin/python -m benchmarks.lighthouse [--pages en/index.html ...]

Needs Node.js; installs Lighthouse from benchmarks/package.json on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forms_service.static_site import build_site
from harness.browser import CHROMIUM
from harness.nginx import LocalNginx

HERE = Path(__file__).resolve().parent
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
# The metrics behind the performance score, printed to show how far each page is from losing a point.
METRICS = {"FCP ms": "first-contentful-paint", "LCP ms": "largest-contentful-paint", "TBT ms": "total-blocking-time"}
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync"


def ensure_lighthouse() -> None:
    if not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


def audit(url: str, attempts: int = 3) -> dict:
    """Run Lighthouse on `url` and return its JSON report.

    Chromium under Lighthouse now and then fails to start or to connect on
    a busy machine: such a run is repeated, and only a page that fails every
    time stops the benchmark, with Lighthouse's own error.
    """
    env = dict(os.environ, CHROME_PATH=CHROMIUM)
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        "--output=json",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={CHROME_FLAGS}",
    ]
    for _ in range(attempts):
        out = subprocess.run(command, env=env, capture_output=True, text=True)
        if out.returncode == 0:
            return json.loads(out.stdout)
    raise RuntimeError(f"Lighthouse failed {attempts} times on {url}: {out.stderr.strip()[-2000:]}")


def first_load_bytes(report: dict) -> int:
    """Bytes transferred while Lighthouse loaded the page."""
    return sum(r.get("transferSize", 0) for r in report["audits"]["network-requests"]["details"]["items"])


def measure(pages: list[str] | None = None) -> tuple[float, list[dict]]:
    """Build the site (timed: both languages are one build), serve it with nginx, audit each page.

    Returns the build's wall time in seconds and one row per page.
    """
    ensure_lighthouse()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "nginx").mkdir()
        server = LocalNginx(work / "nginx", work / "site")
        started = time.perf_counter()
        build = build_site(work / "site", server.url)
        build_seconds = time.perf_counter() - started
        if build.returncode:
            sys.exit(build.stderr)
        pages = pages or sorted(
            p.relative_to(work / "site").as_posix()
            for p in (work / "site").rglob("*.html")
            if not p.relative_to(work / "site").as_posix().startswith(("assets/", "search/"))
        )
        server.start()
        try:
            rows = []
            for page in pages:
                report = audit(server.url + page)
                scores = {c: round(report["categories"][c]["score"] * 100) for c in CATEGORIES}
                failed = [
                    a["id"]
                    for c in CATEGORIES
                    for ref in report["categories"][c]["auditRefs"]
                    if ref["weight"] and (a := report["audits"][ref["id"]])["score"] not in (None, 1)
                ]
                metrics = {name: report["audits"][audit_id]["numericValue"] for name, audit_id in METRICS.items()}
                rows.append({"page": page, **scores, **metrics, "bytes": first_load_bytes(report), "failed": failed})
            return build_seconds, rows
        finally:
            server.stop()


def print_table(rows: list[dict]) -> None:
    print(
        f"{'page':40} {'perf':>4} {'a11y':>4} {'b.p.':>4} {'seo':>4} {'KB first load':>13}"
        + "".join(f" {name:>6}" for name in METRICS)
    )
    for r in rows:
        print(
            f"{r['page']:40} {r['performance']:>4} {r['accessibility']:>4} {r['best-practices']:>4} {r['seo']:>4}"
            f" {r['bytes'] / 1024:>13.1f}"
            + "".join(f" {r[name]:>6.0f}" for name in METRICS)
            + (f"   below 100: {', '.join(r['failed'])}" if r["failed"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Lighthouse scores and first-load bytes per page.")
    parser.add_argument("--pages", nargs="*", help="site-relative pages (default: every page)")
    args = parser.parse_args()
    build_seconds, rows = measure(args.pages)
    print(f"site build (all languages): {build_seconds:.1f} s")
    print_table(rows)


if __name__ == "__main__":
    main()
