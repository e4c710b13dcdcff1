"""Packaging: pyproject.toml declares what the code needs (the service's dependencies, the site build's extra,
the development groups), requirements.txt and requirements-dev.txt pin exactly what that resolves to, and
`pip install .` in a clean virtualenv gives a service that runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness.gunicorn import PROJECT
from harness.settings import SITE, service_settings, support_form

PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())
RUNTIME = PROJECT / "requirements.txt"
DEV = PROJECT / "requirements-dev.txt"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^;\s]+)(?:\s*;\s*(.+))?$")
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"  # any readable file: nothing is sent


def pins(path: Path) -> dict[str, str]:
    """Name -> exact version, for each pin of the file that applies to this interpreter (its marker)."""
    found = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(("#", "-r ")):
            continue
        pinned = PIN.match(line)
        assert pinned, f"{path.name}: not an exact pin: {line!r}"
        name, version, marker = pinned.groups()
        if marker is None or Requirement(f"x; {marker}").marker.evaluate():
            found[canonicalize_name(name)] = version
    return found


def group(name: str) -> list[str]:
    """A dependency group's requirements, the groups it includes expanded (PEP 735)."""
    entries = []
    for entry in PYPROJECT["dependency-groups"][name]:
        entries += group(entry["include-group"]) if isinstance(entry, dict) else [entry]
    return entries


def resolved(requirements: list[str]) -> set[str]:
    """The installed distributions these requirements bring, dependencies of dependencies included."""
    found: set[str] = set()
    waiting = [(Requirement(text), "") for text in requirements]
    while waiting:
        requirement, extra = waiting.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        extras = requirement.extras
        if name in found and not extras:
            continue
        found.add(name)
        waiting += [(Requirement(text), "") for text in distribution(name).requires or []]
        waiting += [(Requirement(text), extra) for text in distribution(name).requires or [] for extra in extras]
    return found


def declared_runtime() -> list[str]:
    return [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["site"]]


def test_requirements_txt_pins_exactly_the_service_and_the_site_build():
    assert resolved(declared_runtime()) == set(pins(RUNTIME))


def test_requirements_dev_txt_pins_exactly_the_development_tools_and_the_runtime():
    assert DEV.read_text().count("\n-r requirements.txt\n") == 1
    assert resolved(group("dev")) - resolved(declared_runtime()) == set(pins(DEV))
    assert not set(pins(DEV)) & set(pins(RUNTIME)), "pinned twice"


def test_every_declared_range_holds_its_pin_and_the_venv_holds_the_pins():
    """make install installed requirements-dev.txt: what runs the tests is exactly what is pinned."""
    pinned = {**pins(RUNTIME), **pins(DEV)}
    for text in [*declared_runtime(), *group("dev")]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(pinned[canonicalize_name(requirement.name)]), text
    installed = {}
    for name in pinned:
        try:
            installed[name] = distribution(name).version
        except PackageNotFoundError:
            installed[name] = None
    assert installed == pinned


def test_pip_install_in_a_clean_venv_runs_the_service(tmp_path):
    """`pip install .` (the package alone, from a copy of the project: pip builds in the tree it is given),
    then, away from the project, the app answers its health check and accepts a support request: its
    templates and catalogues were installed with it."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(PROJECT / "pyproject.toml", source)
    shutil.copytree(PROJECT / "forms_service", source / "forms_service", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)], capture_output=True, text=True, timeout=600
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert subprocess.run([str(python), "-c", "import forms_service.app"], cwd=elsewhere).returncode == 0
    script = """
import json, sys
import forms_service
from forms_service.app import create_app
venv, settings, form, origin = sys.argv[1:]
assert forms_service.__file__.startswith(venv), forms_service.__file__
client = create_app(json.loads(settings)).test_client()
print(client.get("/forms/healthz").status_code)
answer = client.post("/forms/support", data=json.loads(form), headers={"Origin": origin, "Accept": "application/json"})
print(answer.status_code, answer.json)
"""
    settings = service_settings({}, CA_FILE, tmp_path / "data")
    arguments = [str(venv), json.dumps(settings), json.dumps(support_form()), SITE["Origin"]]
    ran = subprocess.run(
        [str(python), "-c", script, *arguments], cwd=elsewhere, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    health, accepted = ran.stdout.splitlines()
    assert health == "200" and accepted.startswith("202 "), ran.stdout
