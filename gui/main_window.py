"""The main window: canvas, layer panel, file list, history; editing, worker and projects wired up."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (QCheckBox, QDockWidget, QFileDialog, QHBoxLayout, QInputDialog, QLabel,
                               QMainWindow, QMessageBox, QProgressBar, QPushButton, QSizePolicy, QSlider,
                               QToolBar, QVBoxLayout, QWidget)

from core.brush import stroke_mask
from core.encoders.devices import choose_device
from core.errors import CutTreeError
from core.image_io import list_images, load_image
from core.project import Autosaver, Category, Project
from core.settings import Settings
from core.tree import Edit, TreeEditError
from gui import overlay
from gui.autosave import BackgroundWriter
from gui.canvas import BRUSH, ERASER, SELECT, Canvas
from gui.categories import default_categories
from gui.category_panel import CategoryPanel
from gui.commands import GranularityCommand, TreeEditCommand, changed_rows, changes_structure
from gui.document import DONE, EDITED, ERROR, NOT_SEGMENTED, QUEUED, WORKING, ImageDoc
from gui.file_list import FileList
from gui.history_view import HistoryView
from gui.leaf_cuts import LeafCut, LeafCuts
from gui.layer_model import LayerModel
from gui.layer_panel import LayerPanel
from gui.segmentation import SegmentFn, Segmented
from gui.shortcuts import SHORTCUTS
from gui.worker import Job, WorkerThread

#: Every edit is saved at once: the snapshot costs the GUI thread about a millisecond and the
#: write runs in the background (a newer snapshot replaces a write not yet started), so a crash
#: loses at most the edit being written (tests/test_gui_crash.py).
AUTOSAVE_DELAY_S = 0.0

SLIDER_STEPS = 1000
PREFETCH = 2
SELECT_FILL, SELECT_LINE = (255, 255, 255, 70), (255, 220, 0, 255)
HOVER_FILL, HOVER_LINE = (255, 255, 255, 40), (255, 255, 255, 160)
BRUSH_STEP = 1.25                 # [ and ] scale the brush radius by this factor


class MainWindow(QMainWindow):
    """One window, many images; each image has its own tree and undo stack."""

    def __init__(self, settings: Optional[Settings] = None, segment: Optional[SegmentFn] = None,
                 qsettings: Optional[QSettings] = None) -> None:
        super().__init__()
        self.setWindowTitle("CutTree")
        self.settings = settings or Settings()
        self.qsettings = qsettings or QSettings("CutTree", "CutTree")
        self.docs: list[ImageDoc] = []
        self.current = -1
        self.selection: list[int] = []
        self._drawn_selection: tuple = ()
        self.hover: Optional[int] = None
        self.opacity = 0.45
        self.project: Optional[Project] = None
        self.autosaver: Optional[Autosaver] = None
        self.writer: Optional[BackgroundWriter] = None
        self.categories: list[Category] = default_categories()
        self.worker = WorkerThread(segment)
        self.undo_group = QUndoGroup(self)
        self._build_widgets()
        self._build_actions()
        self._connect_worker()
        self._autosave_timer = QTimer(self, singleShot=True, timeout=self._autosave)
        self._restore_layout()

    # ================================================================== building
    def _build_widgets(self) -> None:
        self.canvas = Canvas()
        self.frontier_overlay = overlay.FrontierOverlay()
        self.canvas.clicked.connect(self._canvas_clicked)
        self.canvas.hovered.connect(self._canvas_hovered)
        self.canvas.stroked.connect(self._canvas_stroked)
        self.granularity = QSlider(Qt.Orientation.Horizontal, objectName="granularity")
        self.granularity.setRange(0, SLIDER_STEPS)
        self.granularity.setToolTip("Granularity τ: more segments to the right")
        self.granularity.valueChanged.connect(self._granularity_moved)
        self.region_only = QCheckBox("selected region only")
        self.tau_label = QLabel(minimumWidth=80)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, objectName="opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.opacity * 100))
        self.opacity_slider.setMaximumWidth(120)
        self.opacity_slider.valueChanged.connect(self._opacity_moved)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Coarse"))
        bar.addWidget(self.granularity, 1)
        bar.addWidget(QLabel("Fine"))
        bar.addWidget(self.tau_label)
        bar.addWidget(self.region_only)
        bar.addSpacing(16)
        bar.addWidget(QLabel("Opacity"))
        bar.addWidget(self.opacity_slider)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(bar)
        self.setCentralWidget(central)

        self.leaf_cuts = LeafCuts()
        self.leaf_cuts.done.connect(self._leaf_cut)
        self.leaf_cuts.failed.connect(lambda request, message: self.stage.setText(message))
        self.layer_model = LayerModel(self._category_name)
        self.layer_model.on_visibility = self._set_visible
        self.layer_model.on_regroup = self.regroup
        self.layers = LayerPanel(self.layer_model)
        self.layers.selected.connect(self._layers_selected)
        self.files = FileList()
        self.files.chosen.connect(self.show_image)
        self.category_panel = CategoryPanel()
        self.category_panel.chosen.connect(self.label_selection)
        self.category_panel.changed.connect(self._categories_edited)
        self.category_panel.delete_requested.connect(self.delete_category)
        self.category_panel.reserved_ids = self._used_category_ids
        self.category_panel.set_categories(self.categories)
        self.history = HistoryView(self.undo_group, "segmented")
        self._docks = {}
        for name, title, widget, area in (
                ("files", "Images", self.files, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("layers", "Layers (cut tree)", self.layers, Qt.DockWidgetArea.RightDockWidgetArea),
                ("categories", "Categories", self.category_panel, Qt.DockWidgetArea.RightDockWidgetArea),
                ("history", "History", self.history, Qt.DockWidgetArea.LeftDockWidgetArea)):
            dock = QDockWidget(title, self, objectName=f"dock_{name}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self._docks[name] = dock
        self.resizeDocks([self._docks["files"], self._docks["layers"]], [240, 380], Qt.Orientation.Horizontal)

        self.stage = QLabel("ready")
        # a new message must not re-lay out the status bar (that repaints the whole bottom edge)
        self.stage.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar(maximumWidth=220, textVisible=True)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.cancel_button = QPushButton(qta.icon("mdi6.close-circle-outline"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel_segmentation)
        self.cancel_button.hide()
        self.engine = QLabel()
        status = self.statusBar()
        status.addWidget(self.stage, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.engine)
        self._show_engine()

    def _build_actions(self) -> None:
        handlers: dict[str, Callable[[], object]] = {
            "open_images": self._ask_images, "open_folder": self._ask_folder,
            "new_project": self._ask_new_project, "open_project": self._ask_open_project,
            "save": self.save, "export": self._export_dialog, "settings": self._settings_dialog,
            "quit": self.close, "undo": self.undo_group.undo, "redo": self.undo_group.redo,
            "merge": self.merge_selection, "split": self.split_selection,
            "parent": self.select_parent, "child": self.select_child, "ignore": self.toggle_ignore,
            "rename": self._ask_rename, "unlabel": lambda: self.label_selection(None),
            "prev_image": lambda: self.step_image(-1), "next_image": lambda: self.step_image(1),
            "resegment": self.resegment, "cancel": self.cancel_segmentation,
            "toggle_overlay": self.toggle_overlay, "fit": self.canvas.fit,
            "actual_size": self.canvas.actual_size, "zoom_in": lambda: self.canvas.zoom(1.25),
            "zoom_out": lambda: self.canvas.zoom(0.8), "finer": lambda: self.step_granularity(1),
            "coarser": lambda: self.step_granularity(-1), "dark_theme": self._toggle_theme,
            "help": self._help_dialog, "select_tool": self._escape, "brush": lambda: self.set_tool(BRUSH),
            "eraser": lambda: self.set_tool(ERASER), "brush_smaller": lambda: self.scale_brush(1 / BRUSH_STEP),
            "brush_larger": lambda: self.scale_brush(BRUSH_STEP),
        }
        icons = {"open_images": "mdi6.image-multiple-outline", "open_folder": "mdi6.folder-image",
                 "open_project": "mdi6.folder-open-outline", "new_project": "mdi6.folder-plus-outline",
                 "save": "mdi6.content-save-outline", "export": "mdi6.export", "undo": "mdi6.undo",
                 "redo": "mdi6.redo", "merge": "mdi6.set-merge", "split": "mdi6.set-split",
                 "parent": "mdi6.arrow-up-bold-outline", "child": "mdi6.arrow-down-bold-outline",
                 "ignore": "mdi6.eye-off-outline", "settings": "mdi6.cog-outline",
                 "prev_image": "mdi6.chevron-left", "next_image": "mdi6.chevron-right",
                 "fit": "mdi6.fit-to-screen-outline", "help": "mdi6.help-circle-outline",
                 "resegment": "mdi6.refresh", "toggle_overlay": "mdi6.layers-outline",
                 "select_tool": "mdi6.cursor-default-outline", "brush": "mdi6.brush", "eraser": "mdi6.eraser"}
        self.actions_by_name: dict[str, QAction] = {}
        for name, (text, keys, tip) in SHORTCUTS.items():
            action = QAction(text, self)
            if name in icons:
                action.setIcon(qta.icon(icons[name]))
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setStatusTip(tip)
            action.triggered.connect(handlers[name])
            self.addAction(action)
            self.actions_by_name[name] = action
        self.actions_by_name["dark_theme"].setCheckable(True)
        self._tools = QActionGroup(self)
        for name in ("select_tool", "brush", "eraser"):
            self.actions_by_name[name].setCheckable(True)
            self._tools.addAction(self.actions_by_name[name])
        self.actions_by_name["select_tool"].setChecked(True)
        for digit in range(1, 10):
            action = QAction(f"Label {digit}", self, shortcut=QKeySequence(str(digit)))
            action.triggered.connect(lambda _=False, d=digit: self.label_by_key(d))
            self.addAction(action)
        self._build_menus()

    def _build_menus(self) -> None:
        a = self.actions_by_name
        menus = {"&File": ["open_images", "open_folder", None, "new_project", "open_project", "save",
                           "export", None, "settings", None, "quit"],
                 "&Edit": ["undo", "redo", None, "merge", "split", "parent", "child", None, "ignore",
                           "rename", "unlabel", None, "select_tool", "brush", "eraser", "brush_smaller",
                           "brush_larger"],
                 "&Image": ["prev_image", "next_image", "resegment", "cancel"],
                 "&View": ["toggle_overlay", "fit", "actual_size", "zoom_in", "zoom_out", "finer", "coarser",
                           None, "dark_theme"],
                 "&Help": ["help"]}
        for title, names in menus.items():
            menu = self.menuBar().addMenu(title)
            for name in names:
                menu.addSeparator() if name is None else menu.addAction(a[name])
            if title == "&View":
                menu.addSeparator()
                for dock in self._docks.values():
                    menu.addAction(dock.toggleViewAction())
        toolbar = QToolBar("Main", objectName="toolbar_main")
        for name in ("open_images", "open_project", "save", "export", None, "prev_image", "next_image", None,
                     "undo", "redo", None, "select_tool", "brush", "eraser", None, "merge", "split", "parent",
                     "child", "ignore", None,
                     "toggle_overlay", "fit", "settings", "help"):
            toolbar.addSeparator() if name is None else toolbar.addAction(a[name])
        self.addToolBar(toolbar)
        self.layers.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.layers.addActions([a[n] for n in ("merge", "split", "parent", "child", "ignore", "rename", "unlabel")])
        self.canvas.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.canvas.addActions([a[n] for n in ("merge", "split", "parent", "child", "ignore", "unlabel")])

    def _connect_worker(self) -> None:
        w = self.worker.worker
        w.started.connect(self._job_started)
        w.progress.connect(self._job_progress)
        w.finished.connect(self._job_finished)
        w.failed.connect(self._job_failed)
        w.cancelled.connect(self._job_cancelled)

    # ================================================================== images
    @property
    def doc(self) -> Optional[ImageDoc]:
        return self.docs[self.current] if 0 <= self.current < len(self.docs) else None

    def add_images(self, docs: list[ImageDoc], show: bool = True) -> None:
        """Append images to the list and show the first new one."""
        first = len(self.docs)
        for doc in docs:
            self.docs.append(doc)
            self.undo_group.addStack(doc.undo)
        self.files.set_docs(self.docs)
        if show and docs:
            self.show_image(first)

    def add_paths(self, paths: list[Path]) -> None:
        self.add_images([ImageDoc(str(p), Path(p).name, str(p)) for p in paths])

    def show_image(self, index: int) -> None:
        if not 0 <= index < len(self.docs):
            return
        if self.doc is not None and self.doc is not self.docs[index]:
            _release_cutter(self.doc)
        self.current = index
        self.files.set_current(index)
        doc = self.docs[index]
        self.undo_group.setActiveStack(doc.undo)
        self.selection, self.hover = [], None
        if doc.tree is not None and doc.image is None and doc.status != ERROR:
            self._load_saved_image(doc)
        if doc.ready:
            self._show_doc(doc)
        else:
            self.canvas.set_image(overlay.rgb_image(np.full((64, 64, 3), 80, np.uint8)))
            self.layer_model.set_tree(None)
            if doc.status == ERROR:
                self.stage.setText(f"{doc.name}: {doc.error}")
            elif doc.status not in (QUEUED, WORKING):
                self.segment(doc)
        self._prefetch()

    def _load_saved_image(self, doc: ImageDoc) -> None:
        """A tree from the project needs only its pixels (reading a file, no segmentation)."""
        try:
            doc.image = load_image(doc.key)
        except CutTreeError as exc:
            doc.error = str(exc)
            self._set_status(doc, ERROR)
            return
        if doc.image.shape[:2] != tuple(doc.tree.image_size):
            doc.error = (f"the image is {doc.image.shape[1]}x{doc.image.shape[0]} but its annotation was made "
                         f"for {doc.tree.image_size[1]}x{doc.tree.image_size[0]}")
            doc.image = None
            self._set_status(doc, ERROR)

    def step_image(self, step: int) -> None:
        if self.docs:
            self.show_image(min(max(self.current + step, 0), len(self.docs) - 1))

    def _show_doc(self, doc: ImageDoc) -> None:
        assert doc.tree is not None and doc.image is not None
        self.canvas.set_image(overlay.rgb_image(doc.image))
        self.canvas.set_atom_shape(doc.tree.shape)
        self.canvas.fit()
        self._sync_slider(doc)
        self.refresh()

    # ================================================================== segmentation
    def segment(self, doc: ImageDoc) -> None:
        """Queue a segmentation of the image on the worker thread."""
        self._set_status(doc, QUEUED)
        self.worker.submit(Job(doc.key, doc.source, self.settings))  # type: ignore[arg-type]

    def resegment(self) -> None:
        doc = self.doc
        if doc is not None and doc.status not in (QUEUED, WORKING):
            doc.tree = None
            doc.undo.clear()
            self.show_image(self.current)

    def cancel_segmentation(self) -> None:
        for key in list(self.worker.jobs):
            self.worker.cancel(key)

    def _prefetch(self) -> None:
        """Segment the next images ahead of the annotator."""
        for doc in self.docs[self.current + 1:self.current + 1 + PREFETCH]:
            if doc.status == NOT_SEGMENTED:
                self.segment(doc)

    def _doc_for(self, job: Job) -> Optional[ImageDoc]:
        if not self.worker.is_current(job):
            return None
        return next((d for d in self.docs if d.key == job.key), None)

    def _job_started(self, job: Job) -> None:
        doc = self._doc_for(job)
        if doc is not None:
            self._set_status(doc, WORKING)
            self.progress.setValue(0)
            self.progress.show()
            self.cancel_button.show()
            self.stage.setText(f"segmenting {doc.name}…")

    def _job_progress(self, job: Job, stage: str, fraction: float) -> None:
        doc = self._doc_for(job)
        if doc is not None:
            ahead = "" if doc is self.doc else "segmenting ahead: "
            self.stage.setText(f"{ahead}{doc.name}: {stage}")
            self.progress.setValue(int(100 * fraction))

    def _job_finished(self, job: Job, image: np.ndarray, result: Segmented) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        if doc is None:
            return
        doc.image, doc.tree, doc.cutter = image, result.tree, result.cutter
        if doc is not self.doc:          # segmented ahead: its cutting tables wait until shown
            _release_cutter(doc)
        doc.tree.set_granularity(self.settings.tau)
        doc.undo.clear()
        self._set_status(doc, DONE)
        self._job_ended(f"{doc.name}: {len(doc.tree.frontier())} segments")
        if doc is self.doc:
            self._show_doc(doc)

    def _job_failed(self, job: Job, message: str) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        if doc is None:
            return
        doc.error = message
        self._set_status(doc, ERROR)
        self._job_ended(f"{doc.name}: {message.splitlines()[0]}")
        if doc is self.doc:
            QMessageBox.warning(self, "Cannot segment this image", f"{doc.name}\n\n{message}")

    def _job_cancelled(self, job: Job) -> None:
        doc = self._doc_for(job)
        self.worker.done(job)
        if doc is not None:
            self._set_status(doc, NOT_SEGMENTED)
            self._job_ended(f"{doc.name}: segmentation cancelled")

    def _job_ended(self, message: str) -> None:
        self.stage.setText(message)
        if not self.worker.busy():
            self.progress.hide()
            self.cancel_button.hide()

    def _set_status(self, doc: ImageDoc, status: str) -> None:
        doc.status = status
        if status != ERROR:
            doc.error = ""
        self.files.update_doc(self.docs.index(doc), doc)

    def _show_engine(self) -> None:
        s = self.settings
        model = "" if s.encoder == "classic" else f" · {s.model}"
        if s.encoder == "classic":
            device = "cpu"
        else:  # only `auto` is resolved here: an unavailable explicit device is reported on use
            device = _resolved(choose_device("auto").type if s.device == "auto" else s.device, s.device)
        self.engine.setText(f"encoder: {s.encoder}{model} · device: {device}"
                            f" · method: {_resolved(s.cut_method, s.method)}")

    # ================================================================== drawing
    def refresh(self, structure_changed: bool = True, rows: Optional[set[int]] = None) -> None:
        """Redraw overlay, selection and layer panel after the tree changed.

        `rows`: the layer-panel rows that may show new values (None: all of them)."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return
        tree = doc.tree
        self.selection = [n for n in self.selection if n in tree.nodes]
        colors = {c.id: c.color for c in self.categories}
        box = self.frontier_overlay.update(tree, colors, self.opacity)
        self.canvas.set_overlay(self.frontier_overlay.pixels, box)
        reset = self.layer_model.tree is not tree
        if reset:
            self.layer_model.set_tree(tree)
        elif structure_changed:
            self.layer_model.restructure(rows)
        else:
            self.layer_model.refresh_values(rows)
        if self._selection_key() != self._drawn_selection:
            self._draw_selection()
        else:
            if reset or structure_changed:      # moved rows leave the panel's selection
                self.layers.show_selection(self.selection)
            self._update_selection_status()
        self._draw_hover()

    def _selection_key(self) -> tuple:
        """Identifies the selected pixels: node ids, their atoms and the atom map's version."""
        tree = self.doc.tree if self.doc else None
        if tree is None:
            return ()
        return (id(tree), tree.atom_version, tuple(self.selection),
                tuple(hash(tree.nodes[n].atoms.tobytes()) for n in self.selection))

    def _draw_selection(self) -> None:
        self._drawn_selection = self._selection_key()
        self._draw_mask("selection", self.selection, SELECT_FILL, SELECT_LINE)
        self.layers.show_selection(self.selection)
        self._update_selection_status()

    def _draw_hover(self) -> None:
        ids = [self.hover] if self.hover is not None and self.hover not in self.selection else []
        self._draw_mask("hover", ids, HOVER_FILL, HOVER_LINE)

    def _draw_mask(self, layer: str, node_ids: list[int], fill: tuple, line: tuple) -> None:
        doc = self.doc
        crop = overlay.mask_index(doc.tree, node_ids) if doc and doc.tree and node_ids else None
        if crop is None:
            self.canvas.set_layer(layer, None)
        else:
            self.canvas.set_layer(layer, overlay.indexed_image(crop.index, fill, line), crop.top, crop.left)

    def _update_selection_status(self) -> None:
        doc = self.doc
        if doc is None or doc.tree is None:
            return
        n = len(doc.tree.frontier())
        picked = ", ".join(self.layer_model.region_name(nid) for nid in self.selection[:3])
        more = "…" if len(self.selection) > 3 else ""
        self.stage.setText(f"{doc.name}: {n} segments" + (f" · selected {picked}{more}" if picked else ""))

    def toggle_overlay(self) -> None:
        visible = not self.canvas.layer_visible("overlay")
        self.canvas.set_layer_visible("overlay", visible)

    def _opacity_moved(self, value: int) -> None:
        self.opacity = value / 100
        self.refresh(structure_changed=False)

    # ================================================================== selection
    def set_selection(self, node_ids: list[int]) -> None:
        self.selection = list(dict.fromkeys(node_ids))
        self._draw_selection()
        self._draw_hover()

    def _canvas_clicked(self, row: int, col: int, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.doc
        if doc is None or doc.tree is None:
            return
        nid = doc.tree.node_at(row, col)
        extend = bool(modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
        if not extend:
            self.set_selection([nid])
        elif nid in self.selection:
            self.set_selection([n for n in self.selection if n != nid])
        else:
            self.set_selection(self.selection + [nid])

    def _canvas_hovered(self, row: int, col: int) -> None:
        doc = self.doc
        nid = doc.tree.node_at(row, col) if doc and doc.tree and row >= 0 else None
        if nid != self.hover:
            self.hover = nid
            self._draw_hover()

    def _layers_selected(self, node_ids: list[int]) -> None:
        self.selection = node_ids
        self._draw_mask("selection", node_ids, SELECT_FILL, SELECT_LINE)
        self._update_selection_status()

    def select_parent(self) -> None:
        doc = self.doc
        if doc and doc.tree and self.selection:
            parent = doc.tree.nodes[self.selection[0]].parent
            if parent is not None:
                self.set_selection([parent])

    def select_child(self) -> None:
        doc = self.doc
        if doc and doc.tree and self.selection:
            children = doc.tree.nodes[self.selection[0]].children
            if children:
                self.set_selection([children[0]])

    # ================================================================== editing
    def _apply(self, text: str, make: Callable[[], Optional[Edit]],
               command: type[TreeEditCommand] = TreeEditCommand) -> Optional[Edit]:
        """Run a tree edit, push it on the image's undo stack; a refused edit shows why."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return None
        try:
            edit = make()
        except TreeEditError as exc:
            self.stage.setText(str(exc))
            return None
        if edit is not None:
            self._push(doc, edit, text, command)
        return edit

    def _push(self, doc: ImageDoc, edit: Edit, text: str,
              command: type[TreeEditCommand] = TreeEditCommand) -> None:
        """Put an applied edit on its image's undo stack (any image, shown or not)."""
        assert doc.tree is not None
        doc.undo.push(command(doc.tree, edit, text, lambda edits: self._edited(doc, edits)))

    def _edited(self, doc: ImageDoc, edits: Sequence[Edit]) -> None:
        """After an edit, its undo or redo: redraw (when on screen), mark edited, autosave."""
        if doc.tree is None:
            return
        if doc is self.doc:
            self.refresh(changes_structure(edits), changed_rows(doc.tree, edits))
        if doc.status != EDITED:
            self._set_status(doc, EDITED)
        if self.autosaver is not None and doc.project_id is not None:
            self.autosaver.touch(doc.project_id, doc.tree)
            self._schedule_autosave()

    def merge_selection(self) -> None:
        doc = self.doc
        if doc and doc.tree:
            edit = self._apply("merge", lambda: doc.tree.merge(self.selection))
            if edit is not None:
                merged = [nid for nid, node in edit.after.items()
                          if node is not None and doc.tree.is_frontier(nid)
                          and set(self.selection) <= {nid, *doc.tree.descendants(nid)}]
                self.set_selection(merged[:1])

    def split_selection(self) -> None:
        """Expand the selected region one level; a finest region is cut again in the background."""
        doc = self.doc
        if doc and doc.tree and len(self.selection) == 1:
            nid = self.selection[0]
            if doc.tree.nodes[nid].children or doc.cutter is None:
                edit = self._apply("split", lambda: doc.tree.split(nid, doc.cutter))
                if edit is not None:
                    self.set_selection(list(doc.tree.nodes[nid].children))
            elif self.leaf_cuts.start(doc, doc.tree, nid, doc.cutter):
                self.stage.setText(f"cutting {self.layer_model.region_name(nid)} …")
            else:
                self.stage.setText("still cutting the last region: split again when it is done")

    def _leaf_cut(self, request: LeafCut, labels: Optional[np.ndarray]) -> None:
        """A background cut arrived: split the region with it, unless the tree moved on."""
        doc = request.owner
        assert isinstance(doc, ImageDoc)
        if not request.still_valid(doc.tree):
            self.stage.setText("the image changed while the region was being cut: split it again")
            return
        try:
            edit = doc.tree.split(request.node_id, lambda mask: labels)
        except TreeEditError as exc:
            self.stage.setText(str(exc))
            return
        self._push(doc, edit, "split")
        if doc is self.doc:
            self.set_selection(list(doc.tree.nodes[request.node_id].children))

    def label_by_key(self, digit: int) -> None:
        if digit <= len(self.categories):
            self.label_selection(self.categories[digit - 1].id)

    def label_selection(self, category: Optional[int]) -> None:
        doc = self.doc
        if doc and doc.tree and self.selection:
            name = self._category_name(category) or "unlabelled"
            self._apply(f"label {name}", lambda: doc.tree.label(self.selection, category))

    def toggle_ignore(self) -> None:
        doc = self.doc
        if doc and doc.tree and self.selection:
            value = not all(doc.tree.nodes[n].ignored for n in self.selection)
            self._apply("ignore" if value else "unignore", lambda: doc.tree.set_ignored(self.selection, value))

    def rename_selection(self, name: str) -> None:
        doc = self.doc
        if doc and doc.tree and len(self.selection) == 1:
            self._apply(f"rename to {name}", lambda: doc.tree.rename(self.selection[0], name))

    def regroup(self, node_ids: list[int], new_parent: int) -> bool:
        """Move regions under another node (a drop in the layer panel); a refused move says why."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return False
        name = self.layer_model.region_name(new_parent)
        edit = self._apply(f"move into {name}", lambda: doc.tree.regroup(node_ids, new_parent))
        if edit is not None:
            self.set_selection([n for n in node_ids if n in doc.tree.nodes])
        return edit is not None

    def _set_visible(self, node_id: int, visible: bool) -> None:
        doc = self.doc
        if doc and doc.tree:
            self._apply("show" if visible else "hide", lambda: doc.tree.set_visible([node_id], visible))

    def _ask_rename(self) -> None:
        doc = self.doc
        if doc and doc.tree and len(self.selection) == 1:
            old = doc.tree.nodes[self.selection[0]].name
            name, ok = QInputDialog.getText(self, "Rename region", "Name:", text=old)
            if ok:
                self.rename_selection(name.strip())

    # ================================================================== brush and eraser
    def set_tool(self, tool: str) -> None:
        """SELECT, BRUSH or ERASER (the toolbar buttons follow)."""
        self.canvas.set_tool(tool)
        names = {SELECT: "select_tool", BRUSH: "brush", ERASER: "eraser"}
        self.actions_by_name[names[tool]].setChecked(True)
        if tool != SELECT:
            self.stage.setText(f"{tool}: drag over the image; [ and ] change the size, Esc goes back to selecting")

    def _escape(self) -> None:
        """Esc leaves the brush or eraser; with the select tool it cancels a running segmentation."""
        if self.canvas.tool != SELECT:
            self.set_tool(SELECT)
        else:
            self.cancel_segmentation()

    def scale_brush(self, factor: float) -> None:
        self.canvas.set_brush_radius(self.canvas.brush_radius * factor)
        self.stage.setText(f"brush radius {self.canvas.brush_radius:.0f} px")

    def _canvas_stroked(self, points: np.ndarray, radius: float) -> None:
        """A finished stroke: paint into / erase from the selected region, as one undo step."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return
        if len(self.selection) != 1:
            self.stage.setText(f"select one region to {'paint into' if self.canvas.tool == BRUSH else 'erase from'}")
            return
        tree, target, tool = doc.tree, self.selection[0], self.canvas.tool
        mask = stroke_mask(tree.shape, points, radius)
        move = tree.paint if tool == BRUSH else tree.erase
        self._apply(tool, lambda: move(mask, target))

    # ================================================================== granularity
    def tau_of(self, value: int) -> float:
        return value / SLIDER_STEPS * self.settings.tau_max

    def set_granularity(self, tau: float) -> None:
        """Re-prune the tree at τ (whole image, or the selected region only)."""
        doc = self.doc
        if doc is None or doc.tree is None:
            return
        node = self.selection[0] if self.region_only.isChecked() and self.selection else None
        self._apply(f"granularity {tau:.3f}", lambda: doc.tree.set_granularity(tau, node), GranularityCommand)
        self.tau_label.setText(f"τ = {tau:.3f}")

    def step_granularity(self, direction: int) -> None:
        self.granularity.setValue(self.granularity.value() + direction * SLIDER_STEPS // 50)

    def _granularity_moved(self, value: int) -> None:
        self.set_granularity(self.tau_of(value))

    def _sync_slider(self, doc: ImageDoc) -> None:
        self.granularity.blockSignals(True)
        self.granularity.setValue(round(self.settings.tau / self.settings.tau_max * SLIDER_STEPS))
        self.granularity.blockSignals(False)
        self.tau_label.setText(f"τ = {self.settings.tau:.3f}")

    # ================================================================== categories
    def _category_name(self, category: Optional[int]) -> str:
        if category is None:
            return ""
        return next((c.name for c in self.categories if c.id == category), f"#{category}")

    def set_categories(self, categories: list[Category]) -> None:
        self.categories = categories
        self.category_panel.set_categories(categories)
        self.refresh()

    def _categories_edited(self, categories: list[Category]) -> None:
        """The category manager changed the list: keep it, store it in the project, redraw."""
        self.categories = categories
        if self.project is not None:
            self.project.categories = categories
            try:
                self.project.save()
            except (OSError, CutTreeError) as exc:
                self.stage.setText(f"the categories could not be saved: {exc}")
        self.refresh(structure_changed=False)

    def _used_category_ids(self) -> set[int]:
        """Categories some region of an open image is labelled with."""
        return {node.category for doc in self.docs if doc.tree is not None
                for node in doc.tree.nodes.values() if node.category is not None}

    def delete_category(self, category_id: int) -> None:
        """Delete a category; its regions (in every open image) become unlabelled, undoably per image."""
        name = self._category_name(category_id)
        users = [doc for doc in self.docs
                 if doc.tree is not None and any(n.category == category_id for n in doc.tree.nodes.values())]
        if users:
            answer = QMessageBox.question(
                self, "Delete category", f"Regions in {len(users)} image(s) are labelled “{name}”. "
                "Delete the category and leave them unlabelled?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        for doc in users:
            edit = doc.tree.forget_category(category_id)
            if edit is not None:
                self._push(doc, edit, f"delete category {name}")
        self.category_panel.remove(category_id)

    # ================================================================== projects
    def new_project(self, folder: Path) -> Project:
        """Create a project holding the open images (their trees are saved at once)."""
        project = Project.create(Path(folder), self.categories, self.settings)
        for doc in self.docs:
            if Path(doc.key).is_file():
                h, w = doc.image.shape[:2] if doc.image is not None else _size_of(doc.key)
                doc.project_id = project.add_image(Path(doc.key), w, h).id
        project.save()
        self._attach_project(project)
        self.save()
        return project

    def open_project(self, folder: Path) -> Project:
        """Open a project: its images, categories, settings and saved trees (autosaved edits included)."""
        from gui.project_io import docs_of_project
        self.flush_autosave()
        project = Project.open(Path(folder))
        self._attach_project(project)
        self.settings = project.settings
        self._show_engine()
        self.set_categories(project.categories)
        for doc in self.docs:
            self.undo_group.removeStack(doc.undo)
        self.docs, self.current = [], -1
        docs, problems = docs_of_project(project)
        self.add_images(docs)
        if problems:
            QMessageBox.warning(self, "Some project files have problems", "\n\n".join(problems))
        return project

    def _attach_project(self, project: Project) -> None:
        self._close_writer()
        self.project = project
        self.writer = BackgroundWriter(project)
        self.writer.failed.connect(self._autosave_failed)
        self.autosaver = Autosaver(project, delay_s=AUTOSAVE_DELAY_S, save=self.writer.save)
        self.setWindowTitle(f"CutTree — {project.folder}")

    def save(self) -> None:
        """Save every edited image and project.json (nothing to do without a project)."""
        if self.project is None:
            self._ask_new_project()
            return
        for doc in self.docs:
            if doc.project_id is not None and doc.tree is not None:
                self.autosaver.touch(doc.project_id, doc.tree)
        self.project.categories = self.categories
        self.project.settings = self.settings
        try:
            self.flush_autosave()
            self.project.save()
        except (OSError, CutTreeError) as exc:
            QMessageBox.critical(self, "Save failed", str(exc))
            return
        for doc in self.docs:
            doc.undo.setClean()
        self.stage.setText(f"saved {self.project.folder}")

    def flush_autosave(self) -> None:
        """Save every pending image now and wait until the files are written."""
        if self.autosaver is not None and self.writer is not None:
            self.autosaver.flush()
            self.writer.wait()

    def autosave_idle(self) -> bool:
        """Nothing waits to be saved and no file is being written."""
        return self.autosaver is None or (not self.autosaver.pending() and self.writer.idle())

    def _autosave_failed(self, image_id: int, message: str) -> None:
        """A background write failed: say so, and try that image again later."""
        self.stage.setText(f"autosave failed: {message}")
        doc = next((d for d in self.docs if d.project_id == image_id and d.tree is not None), None)
        if doc is not None and self.autosaver is not None:
            self.autosaver.touch(image_id, doc.tree)
            self._schedule_autosave()

    def _close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _schedule_autosave(self) -> None:
        due = self.autosaver.seconds_until_due() if self.autosaver else None
        if due is not None and not self._autosave_timer.isActive():
            self._autosave_timer.start(int(due * 1000) + 1)

    def _autosave(self) -> None:
        if self.autosaver is None:
            return
        try:
            self.autosaver.poll()
        except (OSError, CutTreeError) as exc:
            self.stage.setText(f"autosave failed: {exc}")
        self._schedule_autosave()

    # ================================================================== dialogs
    def _ask_images(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Open images", "",
                                                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)")
        if names:
            self.add_paths([Path(n) for n in names])

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            paths = list_images(folder)
            if not paths:
                QMessageBox.information(self, "No images", f"{folder} holds no images CutTree can read.")
            self.add_paths(paths)

    def _ask_new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project")
        if folder:
            try:
                self.new_project(Path(folder))
            except (OSError, CutTreeError) as exc:
                QMessageBox.critical(self, "Cannot create the project", str(exc))

    def _ask_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a project folder")
        if folder:
            try:
                self.open_project(Path(folder))
            except (OSError, CutTreeError) as exc:
                QMessageBox.critical(self, "Cannot open the project", str(exc))

    def _export_dialog(self) -> None:
        from gui.dialogs.export_dialog import ExportDialog
        ExportDialog(self).exec()

    def _settings_dialog(self) -> None:
        from gui.dialogs.settings_dialog import SettingsDialog
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.result_settings != self.settings:
            self.apply_settings(dialog.result_settings)

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings: re-segment the current image (cut-only changes reuse cached features)."""
        self.settings = settings
        self._show_engine()
        self.resegment()

    def _help_dialog(self) -> None:
        from gui.dialogs.help_dialog import HelpDialog
        HelpDialog(self).exec()

    def _toggle_theme(self) -> None:
        from gui.theme import apply_theme
        apply_theme(dark=self.actions_by_name["dark_theme"].isChecked())
        self.qsettings.setValue("theme/dark", self.actions_by_name["dark_theme"].isChecked())

    # ================================================================== window
    def _restore_layout(self) -> None:
        self.resize(1400, 900)
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.actions_by_name["dark_theme"].setChecked(self.qsettings.value("theme/dark", False, type=bool))

    def closeEvent(self, event: QCloseEvent) -> None:
        try:
            self.flush_autosave()
        except (OSError, CutTreeError) as exc:
            QMessageBox.critical(self, "Autosave failed", str(exc))
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the window's threads (writer, segmentation, leaf cuts): a QThread still running
        when Qt destroys it aborts the process."""
        self._close_writer()
        self.worker.stop()
        self.leaf_cuts.shutdown()


def _size_of(path: str) -> tuple[int, int]:
    from core.image_io import image_size
    return image_size(path)


def _resolved(value: str, requested: str) -> str:
    """A setting as it runs, marked when it was chosen automatically."""
    return f"{value} (auto)" if requested == "auto" else value


def _release_cutter(doc: ImageDoc) -> None:
    """Free the tables the image's cutter keeps for splitting leaves (rebuilt on the next)."""
    release = getattr(doc.cutter, "release", None)
    if release is not None:
        release()
