"""Project images as window documents, with their saved (autosaved) trees."""
from __future__ import annotations

from core.errors import CutTreeError
from core.project import Project, RefusedFileError
from gui.document import DONE, EDITED, ERROR, ImageDoc


def docs_of_project(project: Project) -> tuple[list[ImageDoc], list[str]]:
    """One document per project image; saved trees (and their undo histories, which the session
    puts back on the stacks) are loaded now (pixels come from the worker).

    The problems returned are shown to the user: images not found, annotation files set aside
    (the image starts afresh) or refused (the image is left unannotated, so nothing overwrites them).
    """
    docs, problems = [], list(project.problems)
    for entry in project.images.values():
        path = str(project.image_path(entry.id))
        doc = ImageDoc(path, entry.path, path, project_id=entry.id)
        saved = None
        try:
            saved = project.load_tree(entry.id)
        except RefusedFileError as exc:
            doc.status, doc.error, doc.locked = ERROR, str(exc), True
            problems.append(str(exc))
        except (CutTreeError, OSError) as exc:      # DamagedFileError: set aside, starts afresh
            problems.append(str(exc))
        if saved is not None:
            doc.tree, doc.saved_history = saved.tree, saved.history
            doc.base_edited = bool(saved.extra.get("edited", True))   # files from before the flag: edited
            doc.status = EDITED if doc.base_edited or (saved.history and saved.history.done) else DONE
        if doc.status != ERROR and not project.image_path(entry.id).is_file():
            doc.status, doc.error = ERROR, f"image file not found: {path}"
        docs.append(doc)
    return docs, problems
