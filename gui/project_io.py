"""Project images as window documents, with their saved (autosaved) trees."""
from __future__ import annotations

from core.errors import CutTreeError
from core.project import DamagedFileError, Project
from gui.document import DONE, EDITED, ERROR, ImageDoc


def docs_of_project(project: Project) -> tuple[list[ImageDoc], list[str]]:
    """One document per project image; saved trees (and their undo histories, which the session
    puts back on the stacks) are loaded now (pixels come from the worker)."""
    docs, problems = [], list(project.problems)
    for entry in project.images.values():
        path = str(project.image_path(entry.id))
        doc = ImageDoc(path, entry.path, path, project_id=entry.id)
        try:
            saved = project.load_tree(entry.id)
        except DamagedFileError:
            saved = None
        except CutTreeError as exc:
            saved = None
            problems.append(str(exc))
        if saved is not None:
            doc.tree, doc.saved_history = saved.tree, saved.history
            doc.base_edited = bool(saved.extra.get("edited", True))   # files from before the flag: edited
            doc.status = EDITED if doc.base_edited or (saved.history and saved.history.done) else DONE
        if not project.image_path(entry.id).is_file():
            doc.status, doc.error = ERROR, f"image file not found: {path}"
        docs.append(doc)
    return docs, problems
