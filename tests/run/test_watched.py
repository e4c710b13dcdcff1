"""`make run` rebuilds the site when anything the build reads changes."""

from __future__ import annotations

import subprocess
import sys

from forms_service.devserver import watched_files
from forms_service.static_site import PROJECT

HOOK_IMPORTS = """
import runpy, sys
for hook in ("languages", "catalogues", "forms"):
    runpy.run_path(f"overrides/hooks/{hook}.py")
print("\\n".join(module.__file__ for name, module in sys.modules.items()
                 if name.split(".")[0] == "forms_service" and getattr(module, "__file__", None)))
"""


def test_every_project_file_the_build_reads_is_watched():
    """The hooks' imports (what MkDocs loads while building) and the catalogues are all watched."""
    loaded = subprocess.run(
        [sys.executable, "-c", HOOK_IMPORTS], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
    watched = {path.resolve() for path in watched_files()}
    assert loaded and {PROJECT / "forms_service" / "messages.py", PROJECT / "forms_service" / "i18n.py"} <= watched
    assert {PROJECT / module for module in loaded} - watched == set()
    assert set((PROJECT / "forms_service" / "translations").glob("*.po")) <= watched
    assert not [path for path in watched if "__pycache__" in path.parts]
