"""A copy of the project in a temporary folder, to extend it the way README.md tells people to.

The copy carries its own forms_service, so whatever runs in it (the site build
with `cwd` there, a service started there) reads the copy's definitions and
catalogues, not this checkout's.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from forms_service.static_site import PROJECT, build_site

COPIED = ("docs", "overrides", "forms_service", "mkdocs.yml")


class EnvTag(list):
    """mkdocs.yml's `!ENV [NAME, default]`, kept as written when the file is rewritten."""


class Loader(yaml.SafeLoader):
    pass


class Dumper(yaml.SafeDumper):
    pass


Loader.add_constructor("!ENV", lambda loader, node: EnvTag(loader.construct_sequence(node)))
Dumper.add_representer(EnvTag, lambda dumper, value: dumper.represent_sequence("!ENV", list(value)))


def copy_project(project: Path) -> Path:
    """What the site build and the service read, copied into `project` (without bytecode)."""
    for name in COPIED:
        source, target = PROJECT / name, project / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return project


def copy_checkout(target: Path) -> Path:
    """This checkout's files as they are on disk (changes not yet committed included, what git ignores
    left out) copied into `target`: what a clone of it holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = PROJECT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


def build_extended_copy(
    project: Path, site_url: str, *additions: Callable[[Path], None]
) -> subprocess.CompletedProcess:
    """Copy the project into `project`, apply each addition to the copy, and build it strictly into
    project/site (the build runs in the copy, so its hooks read the copy's forms_service)."""
    copy_project(project)
    for addition in additions:
        addition(project)
    return build_site(project / "site", site_url, project / "mkdocs.yml")


def read_mkdocs(project: Path) -> dict:
    return yaml.load((project / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def write_mkdocs(project: Path, settings: dict) -> None:
    (project / "mkdocs.yml").write_text(
        yaml.dump(settings, Dumper=Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def i18n_plugin(settings: dict) -> dict:
    """The mkdocs-static-i18n plugin's settings in a read mkdocs.yml."""
    return next(plugin["i18n"] for plugin in settings["plugins"] if isinstance(plugin, dict) and "i18n" in plugin)
