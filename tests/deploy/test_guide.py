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
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.fernet import Fernet

from harness.gunicorn import PROJECT, Gunicorn, service_environment
from harness.nginx import NGINX
from harness.settings import JSON, SITE, service_settings, support_form
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
BACKUP = HERE + "test_a_backup_restores_every_queued_message"
READERS = HERE + "test_the_readers_keys_exported_as_written_start_the_service"

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
    "sudo -u cocreatehumanity-forms /srv/cocreatehumanity/current/.venv/bin/python -c \\\n"
    "'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \\\n"
    "/var/lib/cocreatehumanity-forms/spool.sqlite3 /var/backups/cocreatehumanity/spool-$(date +%F).sqlite3": BACKUP,  # without sudo -u (no such user)
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


def test_the_nginx_lines_install_a_layout_nginx_accepts(tmp_path):
    """Section 2's lines on a Debian-like /etc/nginx (its default site enabled), then nginx -t of
    Debian's layout (sites-enabled/* included at http level), with every host path moved."""
    root = host(tmp_path)
    nginx = root / "etc" / "nginx"
    for folder in ("snippets", "sites-available", "sites-enabled"):
        (nginx / folder).mkdir(parents=True)
    (nginx / "sites-available" / "default").write_text("server { listen 80 default_server; }\n")
    (nginx / "sites-enabled" / "default").symlink_to("../sites-available/default")
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
    temp = "".join(
        f"{name}_temp_path {tmp_path / name}; " for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; {temp}include {nginx}/sites-enabled/*; }}\n"
    )
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


def test_a_backup_restores_every_queued_message(make_app, app_config, smtp_server, tmp_path):
    """The guide's backup lines (without the service's user, which does not exist here) copy the spool of
    a running service; put back in another data folder as the guide says, with the same key, every queued
    message is there and is delivered; the copy holds nothing readable."""
    root = host(tmp_path)
    app = make_app(DATA_DIR=str(root / "var" / "lib" / "cocreatehumanity-forms"))
    client = app.test_client()
    for _ in range(2):
        assert client.post("/forms/support", data=support_form(), headers={**SITE, **JSON}).status_code == 202
    lines = run_by("test_a_backup_restores_every_queued_message", "5. Backups")
    as_root = [
        line.replace("sudo -u cocreatehumanity-forms ", "")
        .replace("-o cocreatehumanity-forms ", "")
        .replace("/srv/cocreatehumanity/current/.venv/bin/python", sys.executable)  # the live release's
        for line in sorted(lines, key=lambda line: not line.startswith("install -d"))
    ]  # the folder first
    shell(as_root, root)
    folder = root / "var" / "backups" / "cocreatehumanity"
    assert mode(folder) == 0o700
    (copy,) = folder.iterdir()
    assert b"hard mission" not in copy.read_bytes() and b"aidworker@" not in copy.read_bytes()

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    (restored / "spool.sqlite3").write_bytes(copy.read_bytes())
    (restored / "spool.sqlite3").chmod(0o600)
    settings = {**app_config, "DATA_DIR": str(restored)}
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
