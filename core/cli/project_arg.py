"""Opening the project a command names, shared by the commands that read one."""
from __future__ import annotations

import sys
from pathlib import Path

from core.project import Project


def open_project(path: Path) -> Project:
    """The project at `path`, its problems (missing images, files set aside) printed as warnings."""
    project = Project.open(path)
    for problem in project.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return project
