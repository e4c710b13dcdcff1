"""deploy/README.md, command by command: each command an operator is told to run is run by a test
(as written, only paths and ports moved), or its section says "Not testable here" and why.

TESTED names the test that runs each command; SHOWN lists the code lines that are not commands
(output, a setting, YAML). The first tests below keep the guide honest: a command added to the
guide without a test or a mark fails them. The others run the commands no other test ran.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.fernet import Fernet

from harness.gunicorn import PROJECT, Gunicorn, service_environment
from harness.nginx import NGINX
from harness.settings import JSON, SITE, service_settings, support_form
from tests.deploy.helpers import FAKE_SYSTEMCTL
from tests.deploy.test_retire import spool
from tests.spool.conftest import gpg

GUIDE = PROJECT / "deploy" / "README.md"
ENV_EXAMPLE = PROJECT / "deploy" / ".env.example"
MARK = "Not testable here:"
HEADING = re.compile(r"^#{1,6} ")
INLINE = re.compile(r"`([^`\n]+)`")
LIST_ITEM = re.compile(r"(\d+\.|-) ")
COMMENT = re.compile(r"\s{2,}# .*$")
# An inline `span` is a command when it starts with one of these and has arguments.
PROGRAMS = {
    "apt-get",
    "certbot",
    "nginx",
    "systemctl",
    "journalctl",
    "rm",
    "make",
    "deploy/release",
    "forms",
    "flask",
    "python3",
    ".venv/bin/python",
    "dig",
    "userdel",
    "useradd",
    "curl",
    "gpg",
    "shred",
    "install",
    "git",
    "gunicorn",
    "mail",
    "cp",
    "ln",
    "cat",
    "editor",
    "sudo",
    "spool",
}
MOVED = re.compile(r"(?<![\w./-])/(etc|srv|var)/")  # absolute paths of the host, moved under a temporary root

HERE = "tests/deploy/test_guide.py::"
UPGRADE = "tests/deploy/test_upgrade.py::"
FIRST_SWITCH = UPGRADE + "test_first_install_serves_the_release_on_the_other_port"
RETIRE = "tests/deploy/test_retire.py::test_the_operator_commands_drain_the_spool_before_removal"
CLI = "tests/spool/test_cli.py::"
CHECK = "tests/spool/test_check.py::test_ok_in_a_subprocess"
NGINX_FILES = HERE + "test_the_nginx_lines_install_a_layout_nginx_accepts"
INSTALL = HERE + "test_the_install_lines_make_the_folders_and_a_private_settings_file"
MONITORING = HERE + "test_the_monitoring_lines_install_the_check_and_a_private_alert_file"
HEALTH = HERE + "test_the_health_lines_get_the_figures_with_the_token"
KEYS = HERE + "test_generated_keys_start_the_service"
BACKUP = HERE + "test_a_private_backup_restores_every_queued_message_on_a_new_host"
READERS = HERE + "test_the_readers_keys_exported_as_written_start_the_service"
UNINSTALL = HERE + "test_uninstall_leaves_nothing_of_ours_and_debians_default_site"
RELEASE_BUILD = "tests/deploy/test_release_build.py::test_a_release_runs_debians_python_and_holds_no_test_tools"

# Command (as the guide writes it, code lines joined) -> the test that runs it.
TESTED = {
    "make build": "tests/site/test_build.py::test_strict_build_passes_without_any_warning",
    "make build SITE_URL=https://www.cocreatehumanity.org/": "tests/site/test_build.py::test_strict_build_passes_without_any_warning",  # mkdocs build --strict, SITE_URL
    "nginx -t": "tests/deploy/test_nginx.py::test_snippet_passes_nginx_t",
    "rm -f /etc/nginx/sites-enabled/default": NGINX_FILES,
    "cd /srv/cocreatehumanity/repo": NGINX_FILES,
    "install -m 644 deploy/nginx/cocreatehumanity-site.conf deploy/nginx/cocreatehumanity-upstream.conf "
    "/etc/nginx/snippets/": NGINX_FILES,
    "install -m 644 deploy/nginx/cocreatehumanity.conf /etc/nginx/sites-available/": NGINX_FILES,
    "ln -s ../sites-available/cocreatehumanity.conf /etc/nginx/sites-enabled/": NGINX_FILES,
    "install -d -m 755 /srv/cocreatehumanity": INSTALL,
    "install -d -m 755 /etc/cocreatehumanity": INSTALL,
    "install -m 600 deploy/.env.example /etc/cocreatehumanity/forms.env": INSTALL,
    "deploy/release build HEAD": RELEASE_BUILD,
    "deploy/release build": RELEASE_BUILD,
    "deploy/release switch <name>": FIRST_SWITCH,
    "deploy/release switch 20261201-140512-3f9c2a1b7d4e": FIRST_SWITCH,
    "deploy/release switch": UPGRADE + "test_upgrade_and_rollback_under_load_lose_nothing",
    "deploy/release switch <the name it printed>": UPGRADE + "test_upgrade_and_rollback_under_load_lose_nothing",
    "deploy/release rollback": UPGRADE + "test_upgrade_and_rollback_under_load_lose_nothing",
    "deploy/release list": UPGRADE + "test_upgrade_and_rollback_under_load_lose_nothing",
    "deploy/release restart": UPGRADE + "test_restart_starts_the_live_release_again_on_the_other_port",
    "deploy/release prune": UPGRADE + "test_prune_deletes_every_release_but_the_live_and_the_previous_one",
    "deploy/release --help": HERE + "test_release_help_lists_its_commands",
    "gunicorn --config python:forms_service.startup forms_service.wsgi:app --bind 127.0.0.1:8001 --workers 3 "
    "--no-control-socket": "tests/deploy/test_startup.py::test_a_bad_setting_stops_three_workers_with_status_4",
    "gunicorn forms_service.wsgi:app": "tests/deploy/test_startup.py::test_readiness_probe_waits_until_the_application_answers",
    ".venv/bin/python -m forms_service.startup": KEYS,
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'": KEYS,
    "python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'": KEYS,
    'curl -fsS -H "Authorization: Bearer $FORMS_HEALTH_TOKEN" https://www.cocreatehumanity.org/forms/healthz': HEALTH,
    "for port in 8001 8002; do\n"
    "systemctl is-active --quiet cocreatehumanity-forms@$port || continue\n"
    "printf '%s ' $port; curl -sS -H \"Authorization: Bearer $FORMS_HEALTH_TOKEN\" http://127.0.0.1:$port/forms/healthz\n"
    "done": HEALTH,  # systemctl is-active stood in for
    "cd /srv/cocreatehumanity/current": MONITORING,
    "install -m 644 deploy/systemd/cocreatehumanity-forms-check.service "
    "deploy/systemd/cocreatehumanity-forms-check.timer \\\n"
    "deploy/systemd/cocreatehumanity-forms-alert@.service /etc/systemd/system/": MONITORING,
    "install -m 600 /dev/null /etc/cocreatehumanity/alert.env": MONITORING,
    "echo 'ALERT_URL=https://hooks.example.org/your/webhook' > /etc/cocreatehumanity/alert.env": MONITORING,
    "install -d -m 700 -o cocreatehumanity-forms /var/backups/cocreatehumanity": BACKUP,  # without -o (no such user)
    "(umask 077 && sudo -u cocreatehumanity-forms /srv/cocreatehumanity/current/.venv/bin/python -c \\\n"
    "'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \\\n"
    "/var/lib/cocreatehumanity-forms/spool.sqlite3 /var/backups/cocreatehumanity/spool-$(date +%F).sqlite3)": BACKUP,  # without sudo -u (no such user)
    "install -d -m 700 -o cocreatehumanity-forms -g cocreatehumanity-forms /var/lib/cocreatehumanity-forms": BACKUP,
    "install -m 600 -o cocreatehumanity-forms -g cocreatehumanity-forms spool-2026-12-01.sqlite3 "
    "/var/lib/cocreatehumanity-forms/spool.sqlite3": BACKUP,
    # Retiring: steps 1 and 4 to 7 (`systemctl` and `nginx -t` stood in for).
    "rm /etc/nginx/sites-enabled/cocreatehumanity.conf && nginx -t && systemctl reload nginx": UNINSTALL,
    "systemctl disable --now cocreatehumanity-forms-check.timer cocreatehumanity-forms@8001 "
    "cocreatehumanity-forms@8002": UNINSTALL,
    "cd /etc/systemd/system && rm cocreatehumanity-forms@.service cocreatehumanity-forms-check.service \\\n"
    "cocreatehumanity-forms-check.timer cocreatehumanity-forms-alert@.service": UNINSTALL,
    "systemctl daemon-reload && systemctl reset-failed": UNINSTALL,
    "shred -u /var/lib/cocreatehumanity-forms/spool.key": UNINSTALL,
    "shred -u /etc/cocreatehumanity/forms.env": UNINSTALL,
    "rm -rf /etc/cocreatehumanity": UNINSTALL,
    "rm -rf /var/lib/cocreatehumanity-forms /var/backups/cocreatehumanity": UNINSTALL,
    "rm -f /etc/nginx/sites-enabled/cocreatehumanity.conf /etc/nginx/sites-available/cocreatehumanity.conf": UNINSTALL,
    "rm /etc/nginx/snippets/cocreatehumanity-site.conf /etc/nginx/snippets/cocreatehumanity-upstream.conf": UNINSTALL,
    "ln -sf /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default": UNINSTALL,
    "nginx -t && systemctl reload nginx": UNINSTALL,
    "rm -rf /srv/cocreatehumanity": UNINSTALL,
    # The `forms` function runs `flask --app forms_service ...` as the service's user (section 4).
    "flask --app forms_service spool …": RETIRE,
    "flask --app forms_service spool dead": RETIRE,
    "forms spool status": RETIRE,
    "spool status": RETIRE,
    "forms spool retry": RETIRE,
    "forms spool dead": RETIRE,
    "spool dead": RETIRE,
    "forms spool requeue --all": RETIRE,
    "forms spool requeue": RETIRE,
    "forms spool requeue ID…": CLI + "test_dead_and_requeue",
    "forms spool discard ID [--yes]": CLI + "test_discard_asks_first_unless_yes",
    "forms spool discard ID": CLI + "test_discard_asks_first_unless_yes",
    "spool discard ID --yes": CLI + "test_discard_asks_first_unless_yes",
    "forms spool rotate-key [--retire-old]": CLI + "test_rotate_key_file",
    "forms spool rotate-key --retire-old": CLI + "test_rotate_key_file",
    "forms spool rotate-key": CLI + "test_rotate_setting_key",
    "spool rotate-key": CLI + "test_rotate_setting_key",
    "forms spool new-key": CLI + "test_new_key",
    "forms spool check": CHECK,
    "spool check": CHECK,
    "gpg --list-keys reader@cocreatehumanity.org": READERS,
    "gpg --export --armor FINGERPRINT > reader.asc": READERS,
    "install -d -m 755 /etc/cocreatehumanity/pgp": READERS,
    "gpg --export --armor FPR_OF_READER_1 FPR_OF_READER_2 > /etc/cocreatehumanity/pgp/readers.asc": READERS,
    "gpg --decrypt": "tests/spool/test_openpgp.py::test_round_trip_through_gnupg",
}

# Code lines that are not commands: what a command prints, a setting, YAML.
SHOWN = {
    '{"ok":true,"reasons":[],"spool":{"dead":0,"depth":0,"oldest_age_seconds":null},"status":"OK"}': HEALTH,
    "SPOOL OK - 0 queued, 0 dead | queued=0;10;100 dead=0;;0 dead_acknowledgements=0 oldest=0s;900;3600": CHECK,
    "SPOOL CRITICAL - 1 association copies dead: `flask --app forms_service spool dead`; 1 queued, 1 dead | ...": "tests/spool/test_check.py::test_a_dead_association_copy_is_critical_a_dead_acknowledgement_is_not",
    "SPOOL CRITICAL - delivery failing since 2026-12-07 22:52:01Z: ActionRequired: authentication refused: 535 5.7.8"
    " Authentication credentials invalid: see FORMS_MAIL_USERNAME, FORMS_MAIL_PASSWORD (mail is kept, sent once"
    " fixed); 2 queued, 0 dead | ...": "tests/spool/test_check.py::"
    "test_a_refused_login_is_critical_at_once_and_the_mail_goes_once_it_is_fixed",
    "FORMS_RATELIMIT_STORAGE_URI=redis://:PASSWORD@10.0.0.5:6379/0": "tests/service/test_ratelimit.py",
    "forms_service: FORMS_DATA_DIR cannot hold the spool now: no space left on device "
    "(/var/lib/cocreatehumanity-forms/spool.sqlite3)": "tests/deploy/test_startup.py::"
    "test_the_unit_starts_the_relay_again_once_the_disk_has_room",
    "FORMS_PGP_KEYS='[\"/etc/cocreatehumanity/pgp/readers.asc\"]'": READERS,
    "make test": "the test suite itself",
    "- locale: ar\nname: العربية\nbuild: true\nextra:\nog_locale: ar_AR\nsite_description: >-\n"
    "…the site's description, in Arabic…\nnav_translations:\nAccueil: الرئيسية\n…one line per navigation title…": "tests/deploy/test_new_language.py",
}


@dataclass(frozen=True)
class Command:
    section: str
    text: str


def sections() -> list[tuple[str, list[str]]]:
    """(heading, its lines up to the next heading of any level) for the whole guide."""
    found, title, lines = [], "", []
    for line in GUIDE.read_text().splitlines():
        if HEADING.match(line):
            found.append((title, lines))
            title, lines = line.lstrip("# "), []
        else:
            lines.append(line)
    return [*found, (title, lines)]


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def block_commands(lines: list[str]) -> list[str]:
    """The code lines of a section: indented 4 spaces deeper than the text (or list item) they follow.

    A line indented deeper than its block's first line, following a `\\`, or closing a loop or a
    function, belongs to the command before it; comments are dropped."""
    commands: list[str] = []
    base, after_blank, text_indent = None, True, 0
    for line in lines:
        if not line.strip():
            after_blank = True
            continue
        if base is None and after_blank and indent(line) >= text_indent + 4:
            base = indent(line)
        elif base is not None and after_blank and indent(line) < base:
            base = None
        after_blank = False
        if base is None:
            item = LIST_ITEM.match(line.lstrip(" "))
            text_indent = indent(line) + (len(item.group(0)) if item else 0)
            continue
        code = COMMENT.sub("", line.strip())
        if code.startswith("#"):
            continue
        if commands and (indent(line) > base or commands[-1].endswith("\\") or code in ("done", "}")):
            commands[-1] += "\n" + code
        else:
            commands.append(code)
    return commands


def guide_commands() -> list[Command]:
    """Every code line of the guide, and every inline `command with arguments` of its text."""
    found = []
    for title, lines in sections():
        found += [Command(title, text) for text in block_commands(lines)]
        found += [
            Command(title, span)
            for span in INLINE.findall("\n".join(lines))
            if " " in span and span.split()[0] in PROGRAMS
        ]
    return found


def marked(title: str) -> bool:
    """Whether the section's text says what is not testable here (wrapped lines joined)."""
    return any(MARK in " ".join(" ".join(lines).split()) for heading, lines in sections() if heading == title)


def test_every_command_is_run_by_a_test_or_marked_not_testable():
    unaccounted = [
        (command.section, command.text)
        for command in guide_commands()
        if command.text not in TESTED and command.text not in SHOWN and not marked(command.section)
    ]
    assert unaccounted == [], f"add the test to TESTED, or '{MARK} ... (why)' to the section"


def test_every_listed_command_is_still_in_the_guide():
    written = {command.text for command in guide_commands()}
    assert (set(TESTED) | set(SHOWN)) - written == set()


def test_every_named_test_exists():
    for reference in {*TESTED.values(), *SHOWN.values()}:
        if not reference.startswith("tests/"):
            continue
        path, _, name = reference.partition("::")
        assert (PROJECT / path).is_file(), reference
        assert not name or f"def {name}(" in (PROJECT / path).read_text(), reference


# The commands no other test runs.


def run_by(test: str, section: str) -> list[str]:
    """The code lines of `section` that TESTED gives to `test`, in the guide's order."""
    lines = [
        command.text
        for command in guide_commands()
        if command.section == section and TESTED.get(command.text) == HERE + test
    ]
    assert lines, f"no line of {section!r} left for {test}"
    return lines


def moved(command: str, root: Path) -> str:
    """The command with the host's /etc, /srv and /var under `root`."""
    return MOVED.sub(lambda match: f"{root}/{match.group(1)}/", command)


def shell(commands: list[str], root: Path, env: dict | None = None, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    """The lines in one shell (a `cd` carries on), from the checkout, stopping at the first failure."""
    script = "set -e\n" + "\n".join(moved(command, root) for command in commands)
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def host(tmp_path: Path) -> Path:
    """A temporary root in which /srv/cocreatehumanity/repo and current are this checkout."""
    root = tmp_path / "root"
    (root / "srv" / "cocreatehumanity").mkdir(parents=True)
    for name in ("repo", "current"):
        (root / "srv" / "cocreatehumanity" / name).symlink_to(PROJECT)
    return root


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def debian_nginx(root: Path) -> Path:
    """`root`'s /etc/nginx as Debian installs it: its default site enabled."""
    nginx = root / "etc" / "nginx"
    for folder in ("snippets", "sites-available", "sites-enabled"):
        (nginx / folder).mkdir(parents=True)
    (nginx / "sites-available" / "default").write_text("server { listen 80 default_server; }\n")
    (nginx / "sites-enabled" / "default").symlink_to("../sites-available/default")
    return nginx


def nginx_configuration(nginx: Path, tmp_path: Path) -> Path:
    """An nginx.conf of Debian's layout (sites-enabled/* included at http level) for the moved /etc/nginx."""
    temp = "".join(
        f"{name}_temp_path {tmp_path / name}; " for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; {temp}include {nginx}/sites-enabled/*; }}\n"
    )
    return conf


def test_the_nginx_lines_install_a_layout_nginx_accepts(tmp_path):
    """Section 2's lines on a Debian-like /etc/nginx (its default site enabled), then nginx -t of
    Debian's layout (sites-enabled/* included at http level), with every host path moved."""
    root = host(tmp_path)
    nginx = debian_nginx(root)
    shell(run_by("test_the_nginx_lines_install_a_layout_nginx_accepts", "With nginx (recommended)"), root)

    assert [path.name for path in (nginx / "sites-enabled").iterdir()] == ["cocreatehumanity.conf"]
    for installed in [*(nginx / "snippets").iterdir(), nginx / "sites-available" / "cocreatehumanity.conf"]:
        assert mode(installed) == 0o644
        installed.write_text(moved(installed.read_text(), root))
    certificates = root / "etc" / "letsencrypt" / "live" / "www.cocreatehumanity.org"
    certificates.mkdir(parents=True)
    issued = trustme.CA().issue_cert("www.cocreatehumanity.org", "cocreatehumanity.org")
    issued.private_key_pem.write_to_path(str(certificates / "privkey.pem"))
    issued.cert_chain_pems[0].write_to_path(str(certificates / "fullchain.pem"))
    conf = nginx_configuration(nginx, tmp_path)
    check = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr


def test_the_install_lines_make_the_folders_and_a_private_settings_file(tmp_path):
    root = host(tmp_path)
    shell(run_by("test_the_install_lines_make_the_folders_and_a_private_settings_file", "Install"), root)
    assert mode(root / "etc" / "cocreatehumanity") == 0o755
    settings = root / "etc" / "cocreatehumanity" / "forms.env"
    assert mode(settings) == 0o600 and settings.read_text() == ENV_EXAMPLE.read_text()


def test_the_monitoring_lines_install_the_check_and_a_private_alert_file(tmp_path):
    root = host(tmp_path)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "etc" / "cocreatehumanity").mkdir()
    shell(run_by("test_the_monitoring_lines_install_the_check_and_a_private_alert_file", "Monitoring"), root)
    units = sorted(path.name for path in (root / "etc" / "systemd" / "system").iterdir())
    assert units == [
        "cocreatehumanity-forms-alert@.service",
        "cocreatehumanity-forms-check.service",
        "cocreatehumanity-forms-check.timer",
    ]
    alert_env = root / "etc" / "cocreatehumanity" / "alert.env"
    assert mode(alert_env) == 0o600 and alert_env.read_text().startswith("ALERT_URL=https://")
    alert_unit = (PROJECT / "deploy" / "systemd" / "cocreatehumanity-forms-alert@.service").read_text()
    assert "EnvironmentFile=/etc/cocreatehumanity/alert.env\n" in alert_unit


def generated(command: str) -> str:
    """What a generation command of the guide prints, run with the system's python3 and no settings
    (the first install makes the keys before any release or virtualenv exists)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("FORMS_")}
    result = subprocess.run(
        ["bash", "-c", command.replace("python3 ", "/usr/bin/python3 ", 1)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def generation_lines(text: str) -> dict[str, str]:
    """Setting name -> the command a text gives to generate it (.env.example: the line under its comment)."""
    lines = text.splitlines()
    found = {}
    for number, line in enumerate(lines):
        command = re.match(r"#\s+(python3 -c .*)$", line)
        if command:
            setting = next(
                re.match(r"#? ?FORMS_([A-Z_]+)=", below).group(1)
                for below in lines[number:]
                if re.match(r"#? ?FORMS_[A-Z_]+=", below)
            )
            found[setting] = command.group(1)
    return found


def start_up(settings: dict, **environment: str) -> tuple[int, str, str]:
    """`.venv/bin/python -m forms_service.startup` with these settings (and raw FORMS_ variables):
    status, output, errors."""
    check = subprocess.run(
        [sys.executable, "-m", "forms_service.startup"],
        cwd=PROJECT,
        env={**service_environment(settings), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return check.returncode, check.stdout, check.stderr


def test_generated_keys_start_the_service(smtp_ca_file, tmp_path):
    """The secret, the health token and the spool key made as .env.example and the guide say, before
    anything is installed, pass the start-up check (`.venv/bin/python -m forms_service.startup`:
    silent, status 0); the token is the guide's own line."""
    commands = generation_lines(ENV_EXAMPLE.read_text())
    assert set(commands) == {"SECRET_KEY", "HEALTH_TOKEN", "SPOOL_KEY"}
    spool_key_line = next(
        command.text
        for command in guide_commands()
        if command.section == "The spool key" and command.text.startswith("python3 ")
    )
    assert spool_key_line == commands["SPOOL_KEY"]
    guide_token = next(
        command.text
        for command in guide_commands()
        if command.section == "Monitoring" and command.text.startswith("python3 ")
    )
    assert guide_token == commands["HEALTH_TOKEN"]
    values = {setting: generated(command) for setting, command in commands.items()}
    assert Fernet(values["SPOOL_KEY"].encode())
    assert start_up(service_settings({}, smtp_ca_file, tmp_path / "data", **values)) == (0, "", "")


def test_the_health_lines_get_the_figures_with_the_token(smtp_server, smtp_ca_file, tmp_path):
    """The guide's curl line against the service under gunicorn (only the address moved) prints what the
    guide shows; the loop over the instances asks the one that is active (systemctl is-active stood in
    for: it says so for the port gunicorn listens on only)."""
    token = generated("python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    settings = service_settings(smtp_server.mail_config(), smtp_ca_file, tmp_path / "data", HEALTH_TOKEN=token)
    curl, loop = run_by("test_the_health_lines_get_the_figures_with_the_token", "Monitoring")
    shown = json.loads(
        next(
            command.text
            for command in guide_commands()
            if command.section == "Monitoring" and command.text.startswith('{"ok"')
        )
    )
    stand_in = tmp_path / "bin" / "systemctl"
    stand_in.parent.mkdir()
    env = {**os.environ, "FORMS_HEALTH_TOKEN": token, "PATH": f"{stand_in.parent}:{os.environ['PATH']}"}
    with Gunicorn(settings=settings) as service:
        stand_in.write_text(f'#!/bin/sh\n[ "$*" = "is-active --quiet cocreatehumanity-forms@{service.port}" ]\n')
        stand_in.chmod(0o755)
        one = subprocess.run(
            ["bash", "-c", curl.replace("https://www.cocreatehumanity.org", f"http://127.0.0.1:{service.port}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert one.returncode == 0 and json.loads(one.stdout) == shown, one.stderr
        each = subprocess.run(
            ["bash", "-c", loop.replace("8001 8002", f"{service.port} 1")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    port, answer = each.stdout.split(" ", 1)
    assert (each.returncode, port, json.loads(answer)) == (0, str(service.port), shown), each.stderr


def as_root(line: str) -> str:
    """A line of the guide without the service's user, which does not exist here, and with the live
    release's Python this checkout's."""
    for user in ("sudo -u cocreatehumanity-forms ", "-o cocreatehumanity-forms ", "-g cocreatehumanity-forms "):
        line = line.replace(user, "")
    return line.replace("/srv/cocreatehumanity/current/.venv/bin/python", sys.executable)


def readable_without_the_key(copy: Path) -> set[str]:
    """Every value of a spool copy that a plain SQLite reader shows, as text: all but the sealed blobs."""
    with closing(sqlite3.connect(copy)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            str(value)
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')
            for value in row
            if not isinstance(value, bytes)
        }


def test_a_private_backup_restores_every_queued_message_on_a_new_host(make_app, app_config, smtp_server, tmp_path):
    """The guide's backup lines, under umask 022, copy the spool of a running service into a file its owner
    alone reads (0600). Without the key the copy shows what the guide says (ids, kinds, times) and nothing
    anyone wrote. On a new host, the guide's restore lines make the data folder (0700) and put the copy in
    it (0600) before any start; the start-up check of the first switch opens it, and every queued message
    is delivered."""
    old = host(tmp_path / "old")
    app = make_app(DATA_DIR=str(old / "var" / "lib" / "cocreatehumanity-forms"))
    client = app.test_client()
    since = time.time()
    accepted = [
        client.post("/forms/support", data=support_form(), headers={**SITE, **JSON}).json["id"] for _ in range(2)
    ]
    lines = run_by("test_a_private_backup_restores_every_queued_message_on_a_new_host", "5. Backups")
    backup = sorted((line for line in lines if "/var/backups/" in line), key=lambda line: "install -d" not in line)
    shell(["umask 022", *map(as_root, backup)], old)  # the folder first
    folder = old / "var" / "backups" / "cocreatehumanity"
    (copy,) = folder.iterdir()
    assert (mode(folder), mode(copy)) == (0o700, 0o600)
    assert b"hard mission" not in copy.read_bytes() and b"aidworker@" not in copy.read_bytes()
    shows = readable_without_the_key(copy)
    assert set(accepted) <= shows and {"association", "acknowledgement"} <= shows  # ids and kinds
    assert any(since <= float(value) <= time.time() for value in shows if re.fullmatch(r"\d+\.\d+", value))
    guide = " ".join(" ".join(" ".join(text) for heading, text in sections() if heading == "5. Backups").split())
    assert all(word in guide for word in ("What a copy shows without the key", "ids", "kinds", "times"))

    new = host(tmp_path / "new")
    carried = tmp_path / "carried"  # the copy brought to the new host, in the operator's current folder
    carried.mkdir()
    shutil.copy(copy, carried / "spool-2026-12-01.sqlite3")
    shell(["umask 022", *(as_root(line) for line in lines if line not in backup)], new, cwd=carried)
    data = new / "var" / "lib" / "cocreatehumanity-forms"
    assert (mode(data), mode(data / "spool.sqlite3")) == (0o700, 0o600)
    settings = {**app_config, "DATA_DIR": str(data)}
    assert start_up(settings) == (0, "", "")
    assert spool(settings, "status").startswith("queued: 4\n")
    spool(settings, "retry")
    assert spool(settings, "status").startswith("queued: 0\ndead: 0\n")
    assert len(smtp_server.messages) == 4


def test_release_help_lists_its_commands():
    """`deploy/release --help`: "lists the commands and the paths it uses"."""
    result = subprocess.run(
        [str(PROJECT / "deploy" / "release"), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    for command in ("build REF", "switch NAME", "rollback", "restart", "list", "prune"):
        assert f"\n  {command} " in result.stdout
    assert "RELEASE_ROOT=/srv/cocreatehumanity" in result.stdout


def primary_fingerprint(home: Path, address: str) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", address).decode().splitlines()
    return next(line.split(":")[9] for line in listing if line.startswith("fpr:"))


def public_keys_in(path: Path) -> int:
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return sum(line.startswith("pub:") for line in listing.splitlines())


def test_the_readers_keys_exported_as_written_start_the_service(smtp_ca_file, tmp_path):
    """Two readers' keys exported with the guide's gpg lines (their fingerprints filled in), in the file
    the guide's FORMS_PGP_KEYS line names: one key in reader.asc, both in readers.asc, and the service
    starts with them."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    for name in ("reader", "second"):
        gpg(home, "--quick-gen-key", f"{name} <{name}@cocreatehumanity.org>", "future-default", "default", "never")
    first, second = (primary_fingerprint(home, f"{name}@cocreatehumanity.org") for name in ("reader", "second"))
    section = "OpenPGP: nothing on the server can read a submission"
    lines = [
        line.replace("FPR_OF_READER_1", first).replace("FPR_OF_READER_2", second).replace("FINGERPRINT", first)
        for line in run_by("test_the_readers_keys_exported_as_written_start_the_service", section)
    ]
    setting = next(
        command.text
        for command in guide_commands()
        if command.section == section and command.text.startswith("FORMS_PGP_KEYS=")
    )
    root = host(tmp_path)
    try:
        shell(lines, root, env={**os.environ, "GNUPGHOME": str(home)}, cwd=tmp_path)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    readers = root / "etc" / "cocreatehumanity" / "pgp" / "readers.asc"
    assert (public_keys_in(tmp_path / "reader.asc"), public_keys_in(readers)) == (1, 2)
    value = shlex.split(moved(setting, root).partition("=")[2])[0]  # as systemd's EnvironmentFile= reads it
    assert start_up(service_settings({}, smtp_ca_file, tmp_path / "data"), FORMS_PGP_KEYS=value) == (0, "", "")


def stand_ins(tmp_path: Path, root: Path) -> dict[str, str]:
    """The environment the retiring lines run in: `systemctl` is tests/deploy/fake_systemctl.py on `root`'s
    unit folder, `nginx` is Debian's nginx reading `root`'s /etc/nginx (nginx -t checks that layout)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state = tmp_path / "systemd"
    state.mkdir()
    conf = nginx_configuration(root / "etc" / "nginx", tmp_path)
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_SYSTEMCTL} "$@"\n')
    (bin_dir / "nginx").write_text(f'#!/bin/sh\nexec {NGINX} -c {conf} -p {tmp_path} "$@"\n')
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SYSTEMD_STATE": str(state),
        "FAKE_SYSTEMD_UNIT_DIR": str(root / "etc" / "systemd" / "system"),
    }


def ours(root: Path) -> list[str]:
    """Every file, folder or link under `root` named after the relay (links not followed)."""
    return sorted(
        str(Path(folder, name).relative_to(root))
        for folder, folders, files in os.walk(root)
        for name in folders + files
        if "cocreatehumanity" in name
    )


def test_uninstall_leaves_nothing_of_ours_and_debians_default_site(make_app, tmp_path):
    """A host with everything installed by the guide's own lines (nginx, settings, monitoring with its timer
    enabled, the relay's unit with an instance enabled at boot, a data folder, a backup), then section 9's
    steps 1 and 4 to 7 as written: no unit, timer, link or file of ours is left, and Debian's default site is
    back and passes nginx -t."""
    root = host(tmp_path)
    nginx = debian_nginx(root)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    env = stand_ins(tmp_path, root)
    shell(run_by("test_the_nginx_lines_install_a_layout_nginx_accepts", "With nginx (recommended)"), root)
    shell(run_by("test_the_install_lines_make_the_folders_and_a_private_settings_file", "Install"), root)
    shell(run_by("test_the_monitoring_lines_install_the_check_and_a_private_alert_file", "Monitoring"), root)
    shutil.copy(PROJECT / "deploy" / "systemd" / "cocreatehumanity-forms@.service", units)  # as a switch does
    data = root / "var" / "lib" / "cocreatehumanity-forms"
    make_app(DATA_DIR=str(data))
    (data / "spool.key").write_text(Fernet.generate_key().decode())  # left by a version before FORMS_SPOOL_KEY
    backup = [line for line in run_by(BACKUP.partition("::")[2], "5. Backups") if "/var/backups/" in line]
    shell(sorted(map(as_root, backup), key=lambda line: "install -d" not in line), root)
    (root / "etc" / "cocreatehumanity" / "pgp").mkdir()
    (root / "etc" / "cocreatehumanity" / "pgp" / "readers.asc").write_text("public keys\n")
    (root / "srv" / "cocreatehumanity" / "releases" / "20261201-140512-3f9c2a1b7d4e").mkdir(parents=True)
    shell(
        ["systemctl enable --now cocreatehumanity-forms-check.timer", "systemctl enable cocreatehumanity-forms@8002"],
        root,
        env,
    )
    assert (units / "timers.target.wants" / "cocreatehumanity-forms-check.timer").is_symlink()
    assert (units / "multi-user.target.wants" / "cocreatehumanity-forms@8002.service").is_symlink()
    assert not (nginx / "sites-enabled" / "default").exists()

    lines = run_by(UNINSTALL.partition("::")[2], "9. Retire or uninstall")
    assert not [line for line in lines if MOVED.search(moved(line, root))]  # nothing reaches this host's files
    shell(lines, root, env)
    assert ours(root) == []
    assert not [path for path in units.rglob("*") if not path.is_dir()]
    assert os.readlink(nginx / "sites-enabled" / "default") == str(nginx / "sites-available" / "default")


SUBMIT = """
import sys
from forms_service.app import create_app
from harness.settings import JSON, SITE, support_form
answer = create_app().test_client().post("/forms/support", data=support_form(), headers={**SITE, **JSON})
sys.exit(answer.status_code != 202)
"""


def test_the_key_rotation_keeps_every_message_open_to_both_instances_of_each_restart(app_config, smtp_server, tmp_path):
    """Section 4's rotation with FORMS_SPOOL_KEY, step by step, as each `deploy/release restart` runs it: the
    outgoing instance (the settings before) and the incoming one (after) share the spool for a moment, and
    each must open what the other sealed, which the start-up check of each says; `rotate-key` re-seals with
    the new key, and the last settings, the new key alone, open everything."""
    text = " ".join(" ".join(lines) for heading, lines in sections() if heading == "The spool key")
    steps = re.findall(
        r"`FORMS_SPOOL_KEY=([^`]+)`|`forms spool (rotate-key)`",
        text.partition("**Rotate**")[2].partition("with `FORMS_SPOOL_KEY_FILE`")[0],
    )
    assert [rotate for _, rotate in steps].count("rotate-key") == 1 and len(steps) >= 3
    keys = {"OLD": Fernet.generate_key().decode(), "NEW": Fernet.generate_key().decode()}

    def settings(value: str) -> dict:
        names = json.loads(shlex.split(value)[0]) if value.startswith("'") else [value]
        return {**app_config, "SPOOL_KEY": [keys[name] for name in names]}

    def seal(configuration: dict) -> None:
        """One support request accepted by an instance with these settings (a process of its own)."""
        accepted = subprocess.run(
            [sys.executable, "-c", SUBMIT], cwd=PROJECT, env=service_environment(configuration), timeout=60
        )
        assert accepted.returncode == 0

    before = settings("OLD")
    seal(before)
    for value, rotate in steps:
        if rotate:
            assert spool(before, "rotate-key").startswith("re-sealed: ")
            continue
        after = settings(value)
        seal(after)
        for instance in (before, after):
            assert start_up(instance) == (0, "", ""), (value, instance["SPOOL_KEY"])
        seal(before)
        before = after
    assert before["SPOOL_KEY"] == [keys["NEW"]]
    assert start_up(before) == (0, "", "")
    spool(before, "retry")
    assert spool(before, "status").startswith("queued: 0\ndead: 0\n")
