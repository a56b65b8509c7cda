"""Suggestions for a whole project, headless: train on every labelled region, suggest for every
unlabelled one, optionally accept those above a confidence, save each tree back.

Two passes over the annotation files, one tree in memory at a time (memory stays bounded on
projects of thousands of images): the first collects training examples, the second suggests,
accepts (an undoable edit kept in the file's history) and saves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from core.jobs import CancelToken, Progress, check_cancel, report
from core.project import DamagedFileError, Project
from core.suggest import Suggester, confident_frontier, examples
from core.tree import History
from core.tree_file import SavedTree


@dataclass
class ImageSummary:
    """What propagate did on one image's shown regions."""

    path: str
    regions: int
    labelled: int
    suggested: int
    confident: int
    accepted: int

    def line(self, min_confidence: float) -> str:
        return (f"{self.path}: {self.regions} regions, {self.labelled} labelled, {self.suggested} suggested, "
                f"{self.confident} at >= {min_confidence:.2f}, {self.accepted} accepted")


@dataclass
class PropagateReport:
    """Per-image summaries and what could not be used."""

    min_confidence: float
    images: list[ImageSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    trained: bool = False

    def lines(self) -> list[str]:
        out = [s.line(self.min_confidence) for s in self.images]
        if not self.trained:
            out.append("no suggestions: label regions of at least two categories first")
        totals = [sum(getattr(s, k) for s in self.images) for k in ("regions", "suggested", "confident", "accepted")]
        out.append(f"{len(self.images)} images: {totals[0]} regions, {totals[1]} suggested, "
                   f"{totals[2]} at >= {self.min_confidence:.2f}, {totals[3]} accepted")
        return out + [f"skipped: {p}" for p in self.problems]


def propagate_project(project: Project, min_confidence: float, accept: bool = False,
                      progress: Optional[Progress] = None, cancel: Optional[CancelToken] = None,
                      as_one: bool = False) -> PropagateReport:
    """Compute (and with `accept`, accept) suggestions for every image of the project; `as_one`:
    accepted sibling regions suggested alike become one region."""
    result = PropagateReport(min_confidence)
    suggester = Suggester()
    ids = [i for i in project.images if project.has_tree(i)]
    for n, image_id in enumerate(ids):
        check_cancel(cancel)
        report(progress, "learning from labels", n / max(1, len(ids)))
        saved = _load(project, image_id, result)
        if saved is not None:
            suggester.add_examples(image_id, examples(saved.tree))
    result.trained = suggester.fit()
    for n, image_id in enumerate(ids):
        check_cancel(cancel)
        report(progress, "suggesting", n / max(1, len(ids)))
        saved = _load(project, image_id, result, again=True)
        if saved is None:
            continue
        tree = saved.tree
        if tree.descriptors is None:
            result.problems.append(f"{project.images[image_id].path}: its tree has no region descriptors "
                                   "(made by an older CutTree); segment it again to get suggestions")
        suggester.suggest(tree)
        confident = confident_frontier(tree, min_confidence)
        accepted = 0
        if accept and confident:
            edit = tree.accept_suggestions(confident, as_one)
            if saved.history is None:
                saved.history = History(tree)
            saved.history.push(edit)
            accepted = len(confident)
        front = tree.frontier()
        result.images.append(ImageSummary(
            project.images[image_id].path, len(front),
            sum(tree.effective_category(n) is not None for n in front),
            sum(tree.live_suggestion(n) is not None for n in front), len(confident), accepted))
        project.save_tree(image_id, tree, saved.history)
    report(progress, "suggesting", 1.0)
    return result


def _load(project: Project, image_id: int, result: PropagateReport, again: bool = False) -> Optional[SavedTree]:
    """The image's saved tree, or None (a damaged file is reported once, in the first pass)."""
    try:
        return project.load_tree(image_id)
    except DamagedFileError as exc:
        if not again:
            result.problems.append(str(exc))
        return None
