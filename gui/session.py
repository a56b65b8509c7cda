"""The annotator's work, in one owner: open images, the project and its membership, the shown
image, the selection, edits with undo, autosave and the settings.

`Session` is not a widget. Widgets render it (its signals say what changed) and send it
commands; nothing else changes the work. Every path that could drop work (settings changes,
re-segmenting, new / open project, closing an image or the window) goes through it and either
keeps the work, makes the change undoable, or asks (`ask`, given by the window) — see
docs/decisions/0404.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup

from core.brush import stroke_mask
from core.carry_labels import carry_labels
from core.errors import CutTreeError
from core.image_io import image_size, load_image
from core.project import Category, Project
from core.settings import Settings, invalidation
from core.suggest import confident_frontier
from core.tree import Cutter, Edit, SegmentTree, Suggestion, TreeEditError
from core.tree_file import MAX_HISTORY
from gui.autosave import Autosave
from gui.categories import default_categories
from gui.commands import GranularityCommand, ReplaceTreeCommand, TreeEditCommand, history_of, push_restored
from gui.document import DONE, EDITED, ERROR, NOT_SEGMENTED, QUEUED, WORKING, ImageDoc
from gui.leaf_cuts import LeafCut, LeafCuts
from gui.region_names import region_name
from gui.segmentation import SegmentFn, Segmented
from gui.suggestions import SuggestionRefresher
from gui.worker import Job, WorkerThread

PREFETCH = 2
IMAGES_DIR = "images"            # where a new project keeps the pixels of images that have no file

# the answers the session may ask for (`ask` returns one of those offered, or None for Cancel)
KEEP, CARRY, DISCARD = "Keep my edits", "Re-cut, carry my labels over", "Re-cut, discard my edits"
SAVE, DROP = "Save", "Discard"
DELETE_CATEGORY = "Delete category"

#: ask(title, text, answers) -> the chosen answer, or None when the user cancels
Ask = Callable[[str, str, Sequence[str]], Optional[str]]
#: ask_folder(title) -> a folder for a new project, or None when the user cancels
AskFolder = Callable[[str], Optional[Path]]


class Session(QObject):
    """One annotator's session; see the module docstring."""

    images_changed = Signal()           # images added, removed or renamed: the file list is rebuilt
    status_changed = Signal(int)        # this image's status changed
    image_shown = Signal(bool)          # another image is shown (True) or the shown tree was replaced
    tree_edited = Signal(list)          # edits (or their undo / redo) changed the shown tree
    selection_changed = Signal(bool)    # the selection changed (True: the layer panel must follow)
    message = Signal(str)               # a line about the shown image, for the status bar
    job_progress = Signal(bool, int)    # a segmentation runs (percent), or none does
    settings_changed = Signal()
    project_changed = Signal()
    categories_changed = Signal()
    problem = Signal(str, str)          # title, text: something the user must read
    suggestions_changed = Signal(set)   # new label suggestions for these nodes of the shown tree

    def __init__(self, settings: Optional[Settings] = None, segment: Optional[SegmentFn] = None,
                 ask: Optional[Ask] = None, ask_folder: Optional[AskFolder] = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.categories: list[Category] = default_categories()
        self.docs: list[ImageDoc] = []
        self.current = -1
        self.selection: list[int] = []
        self.project: Optional[Project] = None
        self.autosave: Optional[Autosave] = None
        self.ask: Ask = ask or (lambda title, text, answers: None)       # headless: never destroy work
        self.ask_folder: AskFolder = ask_folder or (lambda title: None)
        self.undo_group = QUndoGroup(self)
        self.worker = WorkerThread(segment)
        self.leaf_cuts = LeafCuts()
        self.leaf_cuts.done.connect(self._leaf_cut)
        self.leaf_cuts.failed.connect(lambda request, text: self._say(request.owner, text))
        self.suggester = SuggestionRefresher()
        self.suggester.arrived.connect(self._suggestions_arrived)
        self.suggester.failed.connect(self.message)
        self._restoring = False
        self._pushing = False
        self._shut_down = False
        w = self.worker.worker
        w.started.connect(self._job_started)
        w.progress.connect(self._job_progress)
        w.finished.connect(self._job_finished)
        w.failed.connect(self._job_failed)
        w.cancelled.connect(self._job_cancelled)
        w.cutter_ready.connect(self._cutter_ready)
        # a finest region waiting for its image's cutter: (the job preparing it, tree, node, version)
        self._split_waiting: Optional[tuple[Job, SegmentTree, int, int]] = None

    # ================================================================== images
    @property
    def doc(self) -> Optional[ImageDoc]:
        return self.docs[self.current] if 0 <= self.current < len(self.docs) else None

    def add_images(self, docs: Iterable[ImageDoc], show: bool = True) -> None:
        """Append images and show the first (an image already open is shown, not added twice);
        while a project is open they join it."""
        first: Optional[ImageDoc] = None
        added = []
        for doc in docs:
            same = next((d for d in self.docs if d.key == doc.key), None)
            if same is None:
                self.docs.append(doc)
                self._adopt_stack(doc)
                added.append(doc)
            first = first or same or doc
        if self.project is not None and added:
            for doc in added:
                self._join_project(doc)
            self._save_project_file()
            self._name_docs()
        self.images_changed.emit()
        if show and first is not None:
            self.show_image(self.docs.index(first))

    def add_paths(self, paths: Iterable[Path]) -> None:
        self.add_images([ImageDoc(str(Path(p).absolute()), Path(p).name, str(Path(p).absolute())) for p in paths])

    def show_image(self, index: int) -> None:
        """Show an image: its saved tree, or segment it (an image in error waits for Ctrl+R)."""
        if not 0 <= index < len(self.docs):
            return
        doc = self.docs[index]
        if self.doc is not None and self.doc is not doc:
            _release_cutter(self.doc)
        self.current = index
        self.undo_group.setActiveStack(doc.undo)
        self.selection = []
        if doc.tree is not None and doc.image is None and doc.status != ERROR:
            self._load_saved_image(doc)
        if not doc.ready and doc.status == NOT_SEGMENTED:
            self.segment(doc)
        for at, other in enumerate(self.docs):
            self._drop_out_of_view(other, at)
        self.image_shown.emit(True)
        self.message.emit(self.describe())
        self._prefetch()

    def _index_of(self, doc: ImageDoc) -> int:
        return next(i for i, d in enumerate(self.docs) if d is doc)

    def _drop_out_of_view(self, doc: ImageDoc, at: int) -> None:
        """Pixels and cutter stay for the shown image, the one before it and the PREFETCH after
        it; an image with a file reads its pixels again when shown, and a cutter is prepared again
        when a finest region is split. A session used to hold both for every image it had shown
        or re-cut (90 MB per 12-megapixel photo), however long the folder."""
        if doc.tree is None or -1 <= at - self.current <= PREFETCH:
            return
        doc.cutter = None
        if isinstance(doc.source, str):
            doc.image = None

    def step_image(self, step: int) -> None:
        if self.docs:
            self.show_image(min(max(self.current + step, 0), len(self.docs) - 1))

    def close_image(self) -> bool:
        """Close the shown image; edits in no project are saved, discarded or kept, as asked."""
        doc = self.doc
        if doc is None or not self._may_drop([doc], "Close image"):
            return False
        self.flush_autosave()
        _release_cutter(doc)
        self.worker.cancel(doc.key)
        self._release_stack(doc)
        del self.docs[self.current]
        self.current = min(self.current, len(self.docs) - 1)
        self.images_changed.emit()
        if self.doc is not None:
            self.show_image(self.current)
        else:
            self.image_shown.emit(True)
        return True

    def _load_saved_image(self, doc: ImageDoc) -> None:
        """A tree from the project needs only its pixels (reading a file, no segmentation)."""
        try:
            doc.image = load_image(doc.key)
        except CutTreeError as exc:
            self._fail(doc, str(exc))
            return
        assert doc.tree is not None
        if doc.image.shape[:2] != tuple(doc.tree.image_size):
            self._fail(doc, f"the image is {doc.image.shape[1]}x{doc.image.shape[0]} but its annotation was made "
                            f"for {doc.tree.image_size[1]}x{doc.tree.image_size[0]}")
            doc.image = None

    def describe(self) -> str:
        """The status bar's line about the shown image."""
        doc = self.doc
        if doc is None:
            return "open images (Ctrl+O) or a project (Ctrl+Shift+O)"
        if doc.status == ERROR:
            return f"{doc.name}: {doc.error.splitlines()[0] if doc.error else 'error'} (Ctrl+R tries again)"
        if doc.tree is None:
            return f"{doc.name}: {doc.status}…" if doc.status in (QUEUED, WORKING) else f"{doc.name}: {doc.status}"
        text = f"{doc.name}: {len(doc.tree.frontier())} segments"
        if doc.status in (QUEUED, WORKING):
            text += " · re-cutting…"
        picked = ", ".join(self.region_name(nid) for nid in self.selection[:3])
        text += f" · selected {picked}{'…' if len(self.selection) > 3 else ''}" if picked else ""
        suggestion = doc.tree.live_suggestion(self.selection[0]) if len(self.selection) == 1 else None
        if suggestion is not None:
            text += (f" · suggested: {self.category_name(suggestion.category)} {suggestion.confidence:.2f}"
                     " (Enter accepts, Delete rejects)")
        return text

    def region_name(self, node_id: int) -> str:
        assert self.doc is not None and self.doc.tree is not None
        return region_name(self.doc.tree, node_id, self.category_name)

    # ================================================================== segmentation
    def segment(self, doc: ImageDoc, recut: Optional[str] = None) -> None:
        """Queue a segmentation on the worker thread; `recut` says how it replaces an edited tree."""
        doc.recut = recut
        self._set_status(doc, QUEUED)
        self.worker.submit(Job(doc.key, doc.source, self.settings))  # type: ignore[arg-type]

    def resegment(self) -> None:
        """Segment the shown image again (Ctrl+R): an image in error tries again; edits are
        carried over or discarded, as asked, in an undoable step."""
        doc = self.doc
        if doc is None or doc.status in (QUEUED, WORKING) or doc.locked:
            return
        if doc.tree is None:
            self.segment(doc)
            self.message.emit(self.describe())
            return
        choice = self._ask_recut([doc], "Re-segment", (CARRY, DISCARD))
        if choice is not None:
            self.segment(doc, choice if doc.holds_work else None)
            self.message.emit(self.describe())

    def cancel_segmentation(self) -> None:
        for key in list(self.worker.jobs):
            self.worker.cancel(key)

    def _prefetch(self) -> None:
        """Segment the next images ahead of the annotator."""
        for doc in self.docs[self.current + 1:self.current + 1 + PREFETCH]:
            if doc.status == NOT_SEGMENTED:
                self.segment(doc)

    def _doc_for(self, job: Job) -> Optional[ImageDoc]:
        """The image a job's answer is for; None when it was replaced or the session shut down
        (an answer queued before the worker stopped must not write through a closed autosave)."""
        if self._shut_down or not self.worker.is_current(job):
            return None
        return next((d for d in self.docs if d.key == job.key), None)

    def _job_started(self, job: Job) -> None:
        doc = self._doc_for(job)
        if doc is not None:
            if job.cutter_shape is None:         # preparing a cutter changes nothing the image holds
                self._set_status(doc, WORKING)
            self.job_progress.emit(True, 0)
            if doc is self.doc:
                self.message.emit(f"segmenting {doc.name}…" if job.cutter_shape is None
                                  else f"{doc.name}: preparing to cut the region…")

    def _job_progress(self, job: Job, stage: str, fraction: float) -> None:
        doc = self._doc_for(job)
        if doc is not None:
            self.job_progress.emit(True, int(100 * fraction))
            if doc is self.doc:
                self.message.emit(f"{doc.name}: {stage}")

    def _job_finished(self, job: Job, image: np.ndarray, result: Segmented) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        self._jobs_ended()
        if doc is None:
            return
        old = doc.tree
        tau = old.granularity if old is not None and old.granularity is not None else self.settings.tau
        result.tree.set_granularity(tau)
        doc.image = image
        # edited work is replaced undoably (edits made while the re-cut ran are carried over)
        mode, doc.recut = doc.recut or (CARRY if doc.holds_work else None), None
        if old is not None and mode is not None:
            if mode == CARRY:
                carry_labels(old, result.tree)
            text = "re-cut, labels carried over" if mode == CARRY else "re-cut, edits discarded"
            self._push_command(doc, ReplaceTreeCommand(doc, result.tree, result.cutter, text,
                                                       lambda: self._tree_shown(doc)))
            self._set_status(doc, EDITED)
        else:
            doc.tree, doc.cutter, doc.base_edited = result.tree, result.cutter, False
            doc.undo.clear()
            self._tree_shown(doc)
            self._set_status(doc, DONE)
            self._save_doc(doc)
        if doc is not self.doc:          # segmented ahead: its cutting tables wait until shown
            _release_cutter(doc)
            self._drop_out_of_view(doc, self._index_of(doc))

    def _job_failed(self, job: Job, text: str) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        self._jobs_ended()
        if job.cutter_shape is not None:          # only a cutter was prepared: the image is as it was
            if self._take_waiting(job) is not None and doc is not None:
                self._say(doc, f"{doc.name}: cannot cut the region: {text.splitlines()[0]}")
            return
        if doc is None:
            return
        doc.recut = None
        if doc.tree is not None:         # a re-cut failed: the tree and its edits stay
            self._set_status(doc, EDITED if doc.edited else DONE)
            self._say(doc, f"{doc.name}: re-segmenting failed: {text.splitlines()[0]}")
        else:
            self._fail(doc, text)
        if doc is self.doc:
            self.problem.emit("Cannot segment this image", f"{doc.name}\n\n{text}")

    def _job_cancelled(self, job: Job) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        self._jobs_ended()
        if job.cutter_shape is not None:
            self._take_waiting(job)
        elif doc is not None:
            doc.recut = None
            self._set_status(doc, NOT_SEGMENTED if doc.tree is None else EDITED if doc.edited else DONE)
            self._say(doc, f"{doc.name}: segmentation cancelled")

    def _cutter_ready(self, job: Job, cutter: Optional[Cutter]) -> None:
        """The worker prepared the image's cutter: keep it, and cut the finest region that waits."""
        doc = self._doc_for(job)
        self.worker.done(job)
        self._jobs_ended()
        waited = self._take_waiting(job)
        if doc is None:
            return
        doc.cutter = cutter
        self._drop_out_of_view(doc, self._index_of(doc))
        if waited is None:
            return
        _, tree, nid, version = waited
        if cutter is None:
            self._say(doc, "this region cannot be cut any further")
        elif doc is not self.doc or doc.tree is not tree or tree.version != version:
            self._say(doc, "the image changed while its cut was being prepared: split the region again")
        else:
            self._cut_finest(doc, nid)

    def _take_waiting(self, job: Job) -> Optional[tuple[Job, SegmentTree, int, int]]:
        """The split that waited for `job`'s cutter, if any; it waits no longer."""
        waiting = self._split_waiting
        if waiting is None or waiting[0] is not job:
            return None
        self._split_waiting = None
        return waiting

    def _jobs_ended(self) -> None:
        if not self.worker.busy():
            self.job_progress.emit(False, 0)

    def _tree_shown(self, doc: ImageDoc) -> None:
        """The image has a new tree (segmented, re-cut, or a re-cut undone or redone): show it and
        refresh the suggestions. Its status and autosave are the caller's (or `_stack_moved`'s)."""
        self.refresh_suggestions()
        if doc is self.doc:
            self.selection = []
            self.image_shown.emit(False)
            self.message.emit(self.describe())

    def _set_status(self, doc: ImageDoc, status: str) -> None:
        doc.status = status
        if status != ERROR:
            doc.error = ""
        if doc in self.docs:
            self.status_changed.emit(self.docs.index(doc))

    def _fail(self, doc: ImageDoc, text: str) -> None:
        doc.error = text
        self._set_status(doc, ERROR)
        self._say(doc, self.describe() if doc is self.doc else "")

    def _say(self, doc: object, text: str) -> None:
        """A message about an image reaches the status bar only while that image is shown."""
        if doc is self.doc and text:
            self.message.emit(text)

    # ================================================================== selection
    def set_selection(self, node_ids: Sequence[int], echo: bool = True) -> None:
        """Select regions; `echo=False` when the layer panel made the selection itself."""
        self.selection = list(dict.fromkeys(node_ids))
        self.selection_changed.emit(echo)

    def select_parent(self) -> None:
        tree = self._tree()
        if tree is not None and self.selection:
            parent = tree.nodes[self.selection[0]].parent
            if parent is not None:
                self.set_selection([parent])

    def select_child(self) -> None:
        tree = self._tree()
        if tree is not None and self.selection and tree.nodes[self.selection[0]].children:
            self.set_selection([tree.nodes[self.selection[0]].children[0]])

    def _tree(self) -> Optional[SegmentTree]:
        return self.doc.tree if self.doc is not None else None

    # ================================================================== editing
    def apply(self, text: str, make: Callable[[], Optional[Edit]],
              command: type[TreeEditCommand] = TreeEditCommand) -> Optional[Edit]:
        """Run a tree edit on the shown image and push it on its undo stack; a refused edit says why."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return None
        try:
            edit = make()
        except TreeEditError as exc:
            self.message.emit(str(exc))
            return None
        if edit is not None:
            self._push(doc, edit, text, command)
        return edit

    def _push(self, doc: ImageDoc, edit: Edit, text: str,
              command: type[TreeEditCommand] = TreeEditCommand) -> None:
        """Put an applied edit on its image's undo stack (any image, shown or not)."""
        assert doc.tree is not None
        self._push_command(doc, command(doc.tree, edit, text, lambda edits: self._edited(doc, edits)))

    def _push_command(self, doc: ImageDoc, command: QUndoCommand) -> None:
        """Push an applied change; its status and autosave follow once the stack counts it
        (QUndoStack.push runs the command's redo before it moves its index)."""
        self._pushing = True
        try:
            doc.undo.push(command)
        finally:
            self._pushing = False
        if doc.status in (DONE, EDITED):
            self._set_status(doc, EDITED if doc.edited else DONE)
        self._save_doc(doc)

    def _edited(self, doc: ImageDoc, edits: Sequence[Edit]) -> None:
        """After an edit, its undo or redo: redraw (when shown) and refresh the suggestions; the
        status and the autosave follow once the stack has moved (`_stack_moved`)."""
        if doc.tree is None or self._restoring:
            return
        if doc is self.doc:
            self.selection = [n for n in self.selection if n in doc.tree.nodes]
            self.tree_edited.emit(list(edits))
        self.refresh_suggestions()

    def _adopt_stack(self, doc: ImageDoc) -> None:
        """The session takes an image's undo stack: Ctrl+Z reaches it, and its moves are saved."""
        self.undo_group.addStack(doc.undo)
        doc.undo.indexChanged.connect(self._stack_index_changed)

    def _release_stack(self, doc: ImageDoc) -> None:
        """An image leaves the session (its history is saved): its stack leaves the group and is
        emptied. Its commands refer to the image through Qt, where Python's collector cannot see
        them, so a kept stack kept every closed image, tree and command alive until quit."""
        self.undo_group.removeStack(doc.undo)
        doc.undo.indexChanged.disconnect(self._stack_index_changed)
        doc.undo.clear()

    def _stack_index_changed(self, _index: int) -> None:
        stack = self.sender()
        doc = next((d for d in self.docs if d.undo is stack), None)
        if doc is not None:
            self._stack_moved(doc)

    def _stack_moved(self, doc: ImageDoc) -> None:
        """An undo or redo moved the image's stack: mark it edited or not and autosave. QUndoStack
        runs a command's undo / redo before it moves its index, so saving from the command saved
        the step before: after one label, undo and redo, a reopened project had the label but not
        the mark that it was the annotator's, and the next settings change re-cut it away."""
        if self._pushing or self._restoring or doc.tree is None or all(d is not doc for d in self.docs):
            return
        if doc.status in (DONE, EDITED):
            self._set_status(doc, EDITED if doc.edited else DONE)
        self._save_doc(doc)

    def merge_selection(self) -> None:
        tree = self._tree()
        if tree is None:
            return
        chosen = list(self.selection)
        edit = self.apply("merge", lambda: tree.merge(chosen))
        if edit is not None:
            merged = [nid for nid, node in edit.after.items()
                      if node is not None and tree.is_frontier(nid) and set(chosen) <= {nid, *tree.descendants(nid)}]
            self.set_selection(merged[:1])

    def split_selection(self) -> None:
        """Expand the selected region one level; a finest region is cut again in the background,
        once the worker has prepared its image's cutter if the image has none (a reopened
        project's images, and those out of view, have none)."""
        doc = self.doc
        if doc is None or doc.tree is None or len(self.selection) != 1:
            return
        tree, nid = doc.tree, self.selection[0]
        if tree.nodes[nid].children:
            if self.apply("split", lambda: tree.split(nid)) is not None:
                self.set_selection(list(tree.nodes[nid].children))
        elif doc.cutter is not None:
            self._cut_finest(doc, nid)
        else:
            self._prepare_cutter(doc, nid)

    def _cut_finest(self, doc: ImageDoc, nid: int) -> None:
        assert doc.tree is not None and doc.cutter is not None
        if self.leaf_cuts.start(doc, doc.tree, nid, doc.cutter):
            self.message.emit(f"cutting {self.region_name(nid)} …")
        else:
            self.message.emit("still cutting the last region: split again when it is done")

    def _prepare_cutter(self, doc: ImageDoc, nid: int) -> None:
        """Ask the worker for the image's cutter; the region is cut when it arrives."""
        assert doc.tree is not None
        running = self.worker.jobs.get(doc.key)
        if running is not None and running.cutter_shape is None:
            self.message.emit(f"{doc.name} is being segmented: split the region when it is done")
            return
        if running is None:
            running = Job(doc.key, doc.source, self.settings, cutter_shape=doc.tree.shape)  # type: ignore[arg-type]
            self.worker.submit(running)
        self._split_waiting = (running, doc.tree, nid, doc.tree.version)
        self.message.emit(f"preparing to cut {self.region_name(nid)} …")

    def _leaf_cut(self, request: LeafCut, labels: Optional[np.ndarray]) -> None:
        """A background cut arrived: split the region with it, unless the tree moved on."""
        doc = request.owner
        assert isinstance(doc, ImageDoc)
        if not request.still_valid(doc.tree):
            self._say(doc, "the image changed while the region was being cut: split it again")
            return
        assert doc.tree is not None
        try:
            edit = doc.tree.split(request.node_id, lambda mask: labels)
        except TreeEditError as exc:
            self._say(doc, str(exc))
            return
        self._push(doc, edit, "split")
        if doc is self.doc:
            self.set_selection(list(doc.tree.nodes[request.node_id].children))

    def label_by_key(self, digit: int) -> None:
        if digit <= len(self.categories):
            self.label_selection(self.categories[digit - 1].id)

    def label_selection(self, category: Optional[int]) -> None:
        """Label the selection (None: unlabelled, also inside a labelled region)."""
        tree = self._tree()
        if tree is not None and self.selection:
            chosen = list(self.selection)
            if self.apply(f"label {self.category_name(category) or 'unlabelled'}",
                          lambda: tree.label(chosen, category)) is None and category is None:
                self.message.emit("already unlabelled")

    def toggle_ignore(self) -> None:
        tree = self._tree()
        if tree is not None and self.selection:
            chosen = list(self.selection)
            value = not all(tree.nodes[n].ignored for n in chosen)
            self.apply("ignore" if value else "unignore", lambda: tree.set_ignored(chosen, value))

    def rename_selection(self, name: str) -> None:
        tree = self._tree()
        if tree is not None and len(self.selection) == 1:
            nid = self.selection[0]
            self.apply(f"rename to {name}", lambda: tree.rename(nid, name))

    def regroup(self, node_ids: list[int], new_parent: int) -> bool:
        """Move regions under another node (a drop in the layer panel); a refused move says why."""
        tree = self._tree()
        if tree is None:
            return False
        edit = self.apply(f"move into {self.region_name(new_parent)}", lambda: tree.regroup(node_ids, new_parent))
        if edit is not None:
            self.set_selection([n for n in node_ids if n in tree.nodes])
        return edit is not None

    def set_visible(self, node_id: int, visible: bool) -> None:
        tree = self._tree()
        if tree is not None:
            self.apply("show" if visible else "hide", lambda: tree.set_visible([node_id], visible))

    def stroke(self, points: np.ndarray, radius: float, paint: bool) -> None:
        """A finished brush (paint) or eraser stroke on the selected region, as one undo step."""
        tree = self._tree()
        if tree is None:
            return
        if len(self.selection) != 1:
            self.message.emit(f"select one region to {'paint into' if paint else 'erase from'}")
            return
        target, mask = self.selection[0], stroke_mask(tree.shape, points, radius)
        self.apply("brush" if paint else "eraser", lambda: (tree.paint if paint else tree.erase)(mask, target))

    def set_granularity(self, tau: float, node_id: Optional[int] = None) -> None:
        """Re-prune the shown tree at τ (the whole image, or one region); slider steps merge in one undo."""
        tree = self._tree()
        if tree is not None:
            self.apply(f"granularity {tau:.3f}", lambda: tree.set_granularity(tau, node_id), GranularityCommand)

    def granularity(self) -> float:
        """The shown image's τ (the default τ for an image never pruned as a whole)."""
        tree = self._tree()
        return tree.granularity if tree is not None and tree.granularity is not None else self.settings.tau

    # ================================================================== label suggestions
    def refresh_suggestions(self) -> None:
        """Suggest again in the background for every image with a tree, the shown one first."""
        self.suggester.request(self._trees_to_suggest)

    def _trees_to_suggest(self) -> list[tuple[str, SegmentTree]]:
        order = ([self.doc] if self.doc is not None else []) + [d for d in self.docs if d is not self.doc]
        return [(d.key, d.tree) for d in order if d.tree is not None and not d.locked]

    def _suggestions_arrived(self, key: str, tree: SegmentTree, found: dict[int, Suggestion]) -> None:
        """An image's new suggestions (made from a copy of `tree`: dropped if it was replaced
        since; nodes removed since are left out). The shown image redraws them and saves them."""
        doc = next((d for d in self.docs if d.key == key), None)
        if doc is None or doc.tree is not tree:
            return
        found = {nid: s for nid, s in found.items() if nid in tree.nodes}
        old, tree.suggestions = tree.suggestions, found
        changed = {nid for nid in old.keys() | found.keys() if old.get(nid) != found.get(nid)}
        if changed and doc is self.doc:
            self.suggestions_changed.emit(changed)
            self._save_doc(doc)

    def live_suggestions(self, node_ids: Iterable[int]) -> list[int]:
        tree = self._tree()
        return [] if tree is None else [n for n in node_ids if tree.live_suggestion(n) is not None]

    def accept_selection(self) -> None:
        """Label the selected regions with their suggestions (Enter): one undo step."""
        self._answer_suggestions(accept=True)

    def accept_selection_as_one(self) -> None:
        """Accept the selection's suggestions, sibling regions suggested alike merged into one
        region with that label (Shift+Enter): one undo step."""
        self._answer_suggestions(accept=True, as_one=True)

    def reject_selection(self) -> None:
        """Refuse the selected regions' suggestions (Delete): never proposed there again, one undo step."""
        self._answer_suggestions(accept=False)

    def _answer_suggestions(self, accept: bool, as_one: bool = False) -> None:
        tree = self._tree()
        if tree is None or not self.selection:
            return
        chosen = self.live_suggestions(self.selection)
        if not chosen:
            self.message.emit("no label suggestion on the selection (0 or Backspace clears a label)")
            return
        names = ", ".join(sorted({self.category_name(tree.live_suggestion(n).category) for n in chosen}))
        if accept:
            text = "accept as one region" if as_one else "accept suggestion"
            self.apply(f"{text} {names}", lambda: tree.accept_suggestions(chosen, as_one))
        else:
            self.apply(f"reject suggestion {names}", lambda: tree.reject_suggestions(chosen))

    def confident_counts(self, min_confidence: float) -> tuple[int, int]:
        """Shown regions whose suggestion reaches the confidence: on the shown image, in all images."""
        counts = {id(d): len(confident_frontier(d.tree, min_confidence)) for d in self.docs if d.tree is not None}
        return counts.get(id(self.doc), 0), sum(counts.values())

    def accept_confident(self, min_confidence: float, every_image: bool, as_one: bool = False) -> int:
        """Accept every shown region's suggestion at or above the confidence, on the shown image
        or on every image (one undo step on each image's own stack); how many were accepted.
        `as_one`: sibling regions suggested alike become one region."""
        docs = [d for d in self.docs if d.tree is not None and not d.locked] if every_image else (
            [self.doc] if self.doc is not None and self.doc.tree is not None else [])
        accepted = 0
        for doc in docs:
            assert doc.tree is not None
            chosen = confident_frontier(doc.tree, min_confidence)
            edit = doc.tree.accept_suggestions(chosen, as_one)
            if edit is not None:
                self._push(doc, edit, f"accept {len(chosen)} suggestions >= {min_confidence:.2f}")
                accepted += len(chosen)
        images = f" in {len(docs)} images" if every_image else ""
        self.message.emit(f"accepted {accepted} suggestions at or above {min_confidence:.2f}{images}")
        return accepted

    # ================================================================== categories
    def category_name(self, category: Optional[int]) -> str:
        if category is None:
            return ""
        return next((c.name for c in self.categories if c.id == category), f"#{category}")

    def set_categories(self, categories: list[Category]) -> None:
        """Use this category list (the category manager edited it): stored in the project at once."""
        self.categories = list(categories)
        if self.project is not None:
            self.project.categories = self.categories
            self._save_project_file()
        self.categories_changed.emit()

    def used_category_ids(self) -> set[int]:
        """Categories some region of an open image is labelled with."""
        return {node.category for doc in self.docs if doc.tree is not None
                for node in doc.tree.nodes.values() if node.category}

    def delete_category(self, category_id: int) -> bool:
        """Delete a category; its regions (in every open image) become unlabelled, undoably per image."""
        name = self.category_name(category_id)
        users = [doc for doc in self.docs
                 if doc.tree is not None and any(n.category == category_id for n in doc.tree.nodes.values())]
        if users and self.ask("Delete category", f"Regions in {len(users)} image(s) are labelled “{name}”. "
                              "Delete the category and leave them unlabelled?", (DELETE_CATEGORY,)) is None:
            return False
        for doc in users:
            assert doc.tree is not None
            edit = doc.tree.forget_category(category_id)
            if edit is not None:
                self._push(doc, edit, f"delete category {name}")
        self.set_categories([c for c in self.categories if c.id != category_id])
        return True

    # ================================================================== settings
    def apply_settings(self, settings: Settings) -> bool:
        """Use new settings. Display, cache and download settings touch no tree; a cut or encoder
        setting re-cuts unedited images, and asks once how to treat edited ones (kept, re-cut with
        their labels carried over, or re-cut and discarded: an undoable step). False: cancelled."""
        kind = invalidation(self.settings, settings)
        docs = [d for d in self.docs if d.tree is not None] if kind != "none" else []
        choice = self._ask_recut(docs, "Settings changed", (KEEP, CARRY, DISCARD))
        if choice is None:
            return False
        self.settings = settings
        if self.project is not None:
            self.project.settings = settings
            self._save_project_file()
        for doc in docs:
            if doc.status in (QUEUED, WORKING) or (doc.holds_work and choice == KEEP):
                continue
            if doc.holds_work:
                self.segment(doc, choice)
            elif doc is self.doc:
                self.segment(doc)
            else:                           # unedited and not shown: cut again when shown
                doc.tree, doc.cutter = None, None
                doc.undo.clear()
                self._set_status(doc, NOT_SEGMENTED)
        for doc in self.docs:               # the new settings may fix what failed
            if doc.status == ERROR and doc.tree is None and not doc.locked:
                self._set_status(doc, NOT_SEGMENTED)
        if self.doc is not None and self.doc.status == NOT_SEGMENTED:
            self.segment(self.doc)
        self.settings_changed.emit()
        self.message.emit(self.describe())
        return True

    def _ask_recut(self, docs: list[ImageDoc], title: str, answers: Sequence[str]) -> Optional[str]:
        """How to re-cut images whose trees hold edits (asked once); DISCARD when none does."""
        edited = [d for d in docs if d.holds_work]
        if not edited:
            return DISCARD
        names = ", ".join(d.name for d in edited[:3]) + ("…" if len(edited) > 3 else "")
        return self.ask(title, f"{len(edited)} image(s) have edits ({names}). Re-cutting makes new regions; "
                        "carrying labels over gives each new region the label covering most of its pixels. "
                        "Either way, Ctrl+Z brings the edited tree back.", answers)

    # ================================================================== projects
    def new_project(self, folder: Path) -> Project:
        """Create a project holding every open image (their trees are saved at once)."""
        self.flush_autosave()
        project = Project.create(Path(folder), self.categories, self.settings)
        self._attach(project, self._writer(project))
        for doc in self.docs:
            doc.project_id = None
            self._join_project(doc)
        self._save_project_file()
        self._name_docs()
        self.images_changed.emit()
        self.save()
        return project

    def open_project(self, folder: Path) -> Optional[Project]:
        """Open a project: its images, categories, settings, saved trees and their undo histories.
        Edits in no project are saved, discarded or kept first, as asked (None: kept, not opened)."""
        from gui.project_io import docs_of_project
        project = Project.open(Path(folder))
        writer = self._writer(project)          # refused before anything is asked or changed
        if not self.may_close("Open project"):
            if writer is not self.autosave:
                writer.close()
            return None
        self._attach(project, writer)
        self.settings = project.settings
        self.settings_changed.emit()
        self.categories = list(project.categories)
        self.categories_changed.emit()
        for doc in self.docs:
            self.worker.cancel(doc.key)
            self._release_stack(doc)
        self.docs, self.current = [], -1
        docs, problems = docs_of_project(project)
        for doc in docs:
            self._restore_history(doc)
        self.docs = docs
        for doc in docs:
            self._adopt_stack(doc)
        self._name_docs()
        self.images_changed.emit()
        if docs:
            self.show_image(0)
        else:
            self.image_shown.emit(True)
        self.refresh_suggestions()
        if problems:
            self.problem.emit("Some project files have problems", "\n\n".join(problems))
        return project

    def _restore_history(self, doc: ImageDoc) -> None:
        """The undo steps saved with the tree go back on the image's stack (Ctrl+Z after a reopen)."""
        history, doc.saved_history = doc.saved_history, None
        if history is not None and doc.tree is not None and history.done:
            self._restoring = True
            try:
                push_restored(doc.undo, doc.tree, history, lambda edits: self._edited(doc, edits))
            finally:
                self._restoring = False
            doc.undo.setClean()

    def _writer(self, project: Project) -> Autosave:
        """The autosave for `project`, holding its writer lock (raises ProjectLocked when
        another process writes it); the current one when `project` is the same folder."""
        current = self.autosave
        if current is not None and current.project.folder.resolve() == project.folder.resolve():
            return current
        return Autosave(project)

    def _attach(self, project: Project, autosave: Autosave) -> None:
        """Make `project` the one edits are saved to, by `autosave` (from `_writer`)."""
        if autosave is self.autosave:
            self.flush_autosave()
            autosave.project = project
        else:
            if self.autosave is not None:
                self.autosave.close()
            autosave.failed.connect(self._autosave_failed)
        self.project = project
        self.autosave = autosave
        self.project_changed.emit()

    def _join_project(self, doc: ImageDoc) -> None:
        """Make an open image part of the project (an image with no file gets one in the project)."""
        project = self.project
        assert project is not None
        if doc.project_id is not None:
            return
        try:
            path = Path(doc.key) if not callable(doc.source) else self._store_pixels(doc)
            entry = project.find_image(path)
            if entry is None:
                h, w = doc.image.shape[:2] if doc.image is not None else image_size(str(path))
                entry = project.add_image(path, w, h)
        except (OSError, CutTreeError) as exc:
            self.problem.emit("Image not added to the project", f"{doc.name}: {exc}")
            return
        doc.project_id = entry.id
        self._save_doc(doc)

    def _name_docs(self) -> None:
        """Name the project's images by their paths below the folder holding them all."""
        assert self.project is not None
        names = self.project.display_names()
        for doc in self.docs:
            if doc.project_id in names:
                doc.name = names[doc.project_id]

    def _store_pixels(self, doc: ImageDoc) -> Path:
        """Write a built-in image's pixels into the project (images/<name>.png); it is a file from now on."""
        assert self.project is not None and callable(doc.source)
        pixels = doc.image if doc.image is not None else doc.source()
        folder = self.project.folder / IMAGES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in doc.key.split(":")[-1]) or "image"
        path, n = folder / f"{stem}.png", 1
        while path.exists():
            path, n = folder / f"{stem}-{n}.png", n + 1
        Image.fromarray(np.asarray(pixels)).save(path)
        self.worker.cancel(doc.key)
        doc.key = doc.source = str(path.absolute())
        return path

    def save(self) -> bool:
        """Save every image and project.json (without a project: ask for a folder and create one)."""
        if self.project is None:
            folder = self.ask_folder("Choose an empty folder for the new project")
            if folder is None:
                return False
            try:
                self.new_project(folder)
            except (OSError, CutTreeError) as exc:
                self.problem.emit("Cannot create the project", str(exc))
                return False
            return True
        for doc in self.docs:
            self._save_doc(doc)
        self.project.categories, self.project.settings = self.categories, self.settings
        try:
            self.flush_autosave()
            self.project.save()
        except (OSError, CutTreeError) as exc:
            self.problem.emit("Save failed", str(exc))
            return False
        for doc in self.docs:
            doc.undo.setClean()
        self.message.emit(f"saved {self.project.folder}")
        return True

    def _save_project_file(self) -> None:
        assert self.project is not None
        try:
            self.project.save()
        except (OSError, CutTreeError) as exc:
            self.problem.emit("Cannot save the project", str(exc))

    def _save_doc(self, doc: ImageDoc) -> None:
        """Autosave one image of the project (its tree and the undo steps a reopen restores)."""
        if self.autosave is None or doc.project_id is None or doc.tree is None or doc.locked:
            return
        self.autosave.save(doc.project_id, doc.tree, history_of(doc.undo, doc.tree, MAX_HISTORY),
                           {"edited": doc.edited})

    def flush_autosave(self) -> None:
        """Wait until every autosave write is on disk (raises the first failure)."""
        if self.autosave is not None:
            self.autosave.wait()

    def autosave_idle(self) -> bool:
        """No autosave write is waiting or running."""
        return self.autosave is None or self.autosave.idle()

    def _autosave_failed(self, image_id: int, text: str) -> None:
        """A background write failed: say so, and write that image again."""
        doc = next((d for d in self.docs if d.project_id == image_id), None)
        self.problem.emit("Autosave failed", f"{doc.name if doc else image_id}: {text}")
        if doc is not None:
            self._save_doc(doc)

    # ================================================================== closing
    def unsaved(self) -> list[ImageDoc]:
        """Images whose edits are in no project (closing them would lose those edits)."""
        return [d for d in self.docs if d.project_id is None and d.edited]

    def may_close(self, title: str) -> bool:
        """Before the session's images go (quit, another project): pending writes are flushed and
        edits in no project are saved, discarded or kept, as asked; False keeps everything open."""
        return self._may_drop(self.docs, title)

    def _may_drop(self, docs: list[ImageDoc], title: str) -> bool:
        try:
            self.flush_autosave()
        except (OSError, CutTreeError) as exc:
            if self.ask(title, f"Autosave failed: {exc}\n\nClose anyway and lose the last edits?", (DROP,)) is None:
                return False
        unsaved = [d for d in docs if d.project_id is None and d.edited]
        if not unsaved:
            return True
        names = ", ".join(d.name for d in unsaved[:3]) + ("…" if len(unsaved) > 3 else "")
        answer = self.ask(title, f"{len(unsaved)} image(s) have edits that are in no project ({names}). "
                          "Save them in a new project?", (SAVE, DROP))
        return answer == DROP or (answer == SAVE and self.save())

    def shutdown(self) -> None:
        """Stop the threads; every autosave write is finished first."""
        self._shut_down = True
        self.suggester.shutdown()
        try:
            self.flush_autosave()
        except (OSError, CutTreeError) as exc:
            self.problem.emit("Autosave failed", str(exc))
        if self.autosave is not None:
            self.autosave.close()
        self.worker.stop()
        self.leaf_cuts.shutdown()


def _release_cutter(doc: ImageDoc) -> None:
    """Free the tables the image's cutter keeps for splitting leaves (rebuilt on the next)."""
    release = getattr(doc.cutter, "release", None)
    if release is not None:
        release()
