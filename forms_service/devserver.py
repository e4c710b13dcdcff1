"""`make run`: the whole project on one origin, on this machine only.

Builds the site, serves it with the forms service on http://127.0.0.1:8000, and hands every relayed email to an
embedded SMTP sink that saves it as a .eml file, so a newcomer can send a form and open what the association
would receive. Not for production: see deploy/.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from forms_service.app import create_app
from forms_service.delivery import start_delivery
from forms_service.fields import FORMS
from forms_service.spool.keys import ensure_key_file
from forms_service.startup import forbid_core_dumps
from forms_service.static_site import PROJECT, build_site, static_site

# Everything the build reads: the hooks render the forms from forms_service (definitions,
# messages, catalogues and whatever they import), so the whole package is watched.
WATCHED = ("docs", "overrides", "mkdocs.yml", "forms_service")


class MailFolder:
    """An aiosmtpd handler that keeps each message as a .eml file and says so."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        name = f"{datetime.now():%Y%m%d-%H%M%S}-{next(self._numbers):03d}.eml"
        path = self.folder / name
        path.write_bytes(envelope.content)
        subject = message_from_bytes(envelope.content, policy=policy.default)["Subject"]
        print(f"mail  {path}  to {', '.join(envelope.rcpt_tos)}  «{subject}»", flush=True)
        return "250 Message accepted for delivery"


def combined(site_app, forms_app):
    """One origin: /forms/… to the service, everything else to the static site."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        target = forms_app if path == "/forms" or path.startswith("/forms/") else site_app
        return target(environ, start_response)

    return app


def watched_files() -> list[Path]:
    """The site's sources, without the bytecode a build itself writes (which would rebuild forever)."""
    roots = [PROJECT / name for name in WATCHED]
    files = (path for root in roots for path in ([root] if root.is_file() else root.rglob("*")))
    return [path for path in files if path.is_file() and "__pycache__" not in path.parts]


def rebuild_on_change(site_dir: Path, site_url: str) -> None:
    """Rebuild the site when its sources change (polling: no extra dependency)."""

    def stamp() -> float:
        return max((path.stat().st_mtime for path in watched_files()), default=0.0)

    def loop() -> None:
        last = stamp()
        while True:
            time.sleep(1)
            now = stamp()
            if now != last:
                last = now
                report(build_site(site_dir, site_url), "rebuilt")

    threading.Thread(target=loop, daemon=True).start()


def report(build, done: str) -> bool:
    """Print a build's outcome; the site keeps serving the last good build."""
    if build.returncode != 0:
        print(build.stderr, file=sys.stderr)
        print("site  build failed (see above)", flush=True)
        return False
    print(f"site  {done}", flush=True)
    return True


def local_forms(folder: Path, site_url: str, smtp_port: int):
    """The forms service as the association would run it, mailing the local sink; its
    spool key is a file made on first use beside (not in) the data folder."""
    key_file = folder / "spool.key"
    ensure_key_file(key_file)
    return create_app(
        {
            "SITE_URL": site_url.rstrip("/"),
            "SITE_DIR": str(folder / "site"),
            "ALLOWED_ORIGINS": [site_url.rstrip("/")],
            "DATA_DIR": str(folder / "data"),
            "SPOOL_KEY_FILE": str(key_file),
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_port,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            # Reserved example addresses (validated like real ones): the sink keeps every message.
            "MAIL_DEFAULT_SENDER": "CoCreate Humanity (dev) <forms@example.org>",
            **{form.recipients_setting: [f"{form.name}@example.org"] for form in FORMS.values()},
            "URGENT_RECIPIENTS": ["urgent@example.org"],
            "SECRET_KEY": "development only: never used in production",
        }
    )


def serve(args: argparse.Namespace) -> int:
    """Build, start the mail sink and the web server, and serve until Ctrl-C."""
    site_url = f"http://127.0.0.1:{args.port}/"
    site_dir = args.folder / "site"
    if not report(build_site(site_dir, site_url), f"built into {site_dir}"):
        return 1
    forms = local_forms(args.folder, site_url, args.smtp_port)
    # Bound before "open" is printed, so whoever waits for that line can connect
    # (a busy port: Werkzeug explains it and exits).
    server = make_server("127.0.0.1", args.port, combined(static_site(site_dir), forms), threaded=True)
    sink = Controller(MailFolder(args.folder / "mail"), hostname="127.0.0.1", port=args.smtp_port)
    try:
        sink.start()
    except OSError as error:
        server.server_close()
        print(f"stop  mail sink: {error.strerror or error} (choose another port with --smtp-port)", flush=True)
        return 1
    start_delivery(forms)
    rebuild_on_change(site_dir, site_url)
    print(f"mail  every relayed message is saved under {args.folder / 'mail'}", flush=True)
    print(f"open  {site_url}   (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()  # returns on Ctrl-C (Werkzeug catches KeyboardInterrupt)
    finally:
        sink.stop()
    print("stop  bye", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--folder", type=Path, default=PROJECT / "instance" / "dev")
    args = parser.parse_args(argv)
    forbid_core_dumps()  # it handles real-looking submissions too
    # Ctrl-C stops, even when started by a script: a shell without job control starts
    # its background commands with SIGINT ignored, and Python then installs no handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return serve(args)
    except KeyboardInterrupt:  # Ctrl-C during the first build: no traceback
        return 130


if __name__ == "__main__":
    sys.exit(main())
