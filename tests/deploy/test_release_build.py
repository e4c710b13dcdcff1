"""`deploy/release build` as the guide runs it (deploy/README.md, "Install" and section 8), for real: a release
of HEAD built on Debian's /usr/bin/python3 whatever python3 comes first in PATH, holding what the service and
the site build need and none of the development tools, and run by the service's user before it counts as
built. The packages come from the package index, as on a server (requirements.txt's exact versions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.gunicorn import PROJECT
from tests.deploy.copies import copy_checkout

RELEASE = PROJECT / "deploy" / "release"
SERVICE_USER = "nobody"  # stands in for cocreatehumanity-forms, which does not exist here
BUILD_TIMEOUT = 900


def other_python_bin(tmp_path: Path) -> Path:
    """A folder whose python3 is not Debian's, to put first in PATH: pyenv's newest (in root's home, which
    the service's user cannot enter), or else a python3 that fails whenever anything runs it."""
    found = sorted(Path.home().glob(".pyenv/versions/3.*/bin/python3"))
    if found:
        return found[-1].parent
    stand_in = tmp_path / "other-bin"
    stand_in.mkdir()
    for name in ("python3", "python"):
        (stand_in / name).write_text("#!/bin/sh\necho 'not the python3 of PATH' >&2\nexit 1\n")
        (stand_in / name).chmod(0o755)
    return stand_in


def clone_of_the_checkout(tmp_path: Path) -> Path:
    """A git repository whose HEAD is this checkout's files as they are on disk (changes not yet committed
    included), as /srv/cocreatehumanity/repo holds a clone."""
    repo = copy_checkout(tmp_path / "repo")
    git = ["git", "-C", str(repo), "-c", "user.name=Operator", "-c", "user.email=operator@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    return repo


@pytest.fixture
def server(tmp_path):
    """RELEASE_ROOT in a folder every user may pass through (pytest's own is root's alone), as /srv is."""
    root = Path(tempfile.mkdtemp(prefix="releases-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def build(root: Path, repo: Path, path: str, **settings: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "PATH": path,
        "RELEASE_ROOT": str(root),
        "RELEASE_REPO": str(repo),
        "RELEASE_USER": SERVICE_USER,
        **settings,
    }
    return subprocess.run(
        [str(RELEASE), "build", "HEAD"], env=environment, capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )


def run(python: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)


def test_a_release_runs_debians_python_and_holds_no_test_tools(server, tmp_path):
    other = other_python_bin(tmp_path)
    path = f"{other}:{os.environ['PATH']}"
    assert Path(shutil.which("python3", path=path)).parent == other
    built = build(server, clone_of_the_checkout(tmp_path), path)
    assert built.returncode == 0, built.stderr[-3000:]
    name = built.stdout.strip()
    release = server / "releases" / name
    assert (release / "REVISION").is_file() and (release / "site" / "index.html").is_file()
    assert f"from /usr/bin/python3, run by {SERVICE_USER}" in built.stderr
    python = release / ".venv" / "bin" / "python"
    assert run(python, "import sys; print(sys.base_prefix)").stdout == "/usr\n"
    for tool in ("pytest", "playwright", "hypothesis", "aiosmtpd", "ruff"):
        missing = run(python, f"import {tool}")
        assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr, tool
    assert run(python, "import forms_service.app, gunicorn, mkdocs, redis").returncode == 0


def test_an_interpreter_the_service_user_cannot_run_stops_the_build(server, tmp_path):
    """An interpreter in a folder of root's alone (as pyenv's are, in /root): the build stops before it
    installs anything, naming the user and the interpreter, and leaves no release to switch to."""
    private = tmp_path / "root-only" / "bin"
    private.mkdir(parents=True)
    private.parent.chmod(0o700)
    (private / "python3").symlink_to("/usr/bin/python3")
    built = build(server, clone_of_the_checkout(tmp_path), os.environ["PATH"], RELEASE_PYTHON=str(private / "python3"))
    assert built.returncode != 0 and built.stdout == ""
    assert f"the service's user, {SERVICE_USER}, cannot run {private / 'python3'}" in built.stderr
    (release,) = (server / "releases").iterdir()
    assert not (release / "REVISION").exists() and not (release / ".venv").exists()
    listing = subprocess.run(
        [str(RELEASE), "list"], env={**os.environ, "RELEASE_ROOT": str(server)}, capture_output=True, text=True
    )
    assert listing.stdout.split()[-1] == "(incomplete)"
