"""The main window: renders the session (canvas, layer panel, file list, history) and forwards
the user's actions to it. The work itself (images, project, edits, autosave, settings) is owned
by `gui.session.Session`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import qtawesome as qta
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QDockWidget, QFileDialog, QInputDialog, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QSizePolicy, QSlider, QToolBar)

from core.encoders.devices import choose_device
from core.image_io import list_images
from core.project import Category, Project
from core.settings import Settings
from core.suggest import DEFAULT_MIN_CONFIDENCE
from core.tree import Edit
from gui import overlay
from gui.canvas import BRUSH, ERASER, SELECT, Canvas
from gui.category_panel import CategoryPanel
from gui.commands import changed_rows, changes_structure
from gui.document import ImageDoc
from gui.file_list import FileList
from gui.history_view import HistoryView
from gui.layer_model import LayerModel
from gui.layer_panel import LayerPanel
from gui.segmentation import SegmentFn
from gui.session import Session
from gui.shortcuts import SHORTCUTS

SLIDER_STEPS = 1000
PANEL_DELAY_MS = 60               # a granularity change redraws the canvas at once, the panel when the slider rests
SLIDER_WIDTH = 260                # px: the granularity slider keeps it whatever the docks do
SELECT_FILL, SELECT_LINE = (255, 255, 255, 70), (255, 220, 0, 255)
HOVER_FILL, HOVER_LINE = (255, 255, 255, 40), (255, 255, 255, 160)
BRUSH_STEP = 1.25                 # [ and ] scale the brush radius by this factor
ICONS = {"open_images": "mdi6.image-multiple-outline", "open_folder": "mdi6.folder-image",
         "open_project": "mdi6.folder-open-outline", "new_project": "mdi6.folder-plus-outline",
         "save": "mdi6.content-save-outline", "export": "mdi6.export", "undo": "mdi6.undo",
         "redo": "mdi6.redo", "merge": "mdi6.set-merge", "split": "mdi6.set-split",
         "parent": "mdi6.arrow-up-bold-outline", "child": "mdi6.arrow-down-bold-outline",
         "ignore": "mdi6.eye-off-outline", "settings": "mdi6.cog-outline",
         "prev_image": "mdi6.chevron-left", "next_image": "mdi6.chevron-right",
         "fit": "mdi6.fit-to-screen-outline", "help": "mdi6.help-circle-outline",
         "resegment": "mdi6.refresh", "toggle_overlay": "mdi6.layers-outline",
         "select_tool": "mdi6.cursor-default-outline", "brush": "mdi6.brush", "eraser": "mdi6.eraser",
         "accept_suggestion": "mdi6.check", "accept_as_one": "mdi6.check-decagram", "reject_suggestion": "mdi6.close", "accept_confident": "mdi6.check-all"}
MENUS = {"&File": ["open_images", "open_folder", "close_image", None, "new_project", "open_project", "save",
                   "export", None, "settings", None, "quit"],
         "&Edit": ["undo", "redo", None, "merge", "split", "parent", "child", None, "ignore", "rename", "unlabel",
                   None, "accept_suggestion", "accept_as_one", "reject_suggestion", "accept_confident", None, "select_tool", "brush", "eraser", "brush_smaller", "brush_larger"],
         "&Image": ["prev_image", "next_image", "resegment", "cancel"],
         "&View": ["toggle_overlay", "fit", "actual_size", "zoom_in", "zoom_out", "finer", "coarser", None,
                   "dark_theme"],
         "&Help": ["help"]}
TOOLBAR = ("open_images", "open_project", "save", "export", None, "prev_image", "next_image", None, "undo", "redo",
           None, "select_tool", "brush", "eraser", None, "merge", "split", "parent", "child", "ignore", None,
           "accept_suggestion", "reject_suggestion", "accept_confident", None, "toggle_overlay", "fit", "settings", "help")


class MainWindow(QMainWindow):
    """One window over one Session: many images, each with its own tree and undo stack."""

    def __init__(self, settings: Optional[Settings] = None, segment: Optional[SegmentFn] = None,
                 qsettings: Optional[QSettings] = None) -> None:
        super().__init__()
        self.setWindowTitle("CutTree")
        self.qsettings = qsettings or QSettings("CutTree", "CutTree")
        self.session = Session(settings, segment, ask=self._ask, ask_folder=self._ask_folder)
        self.undo_group = self.session.undo_group
        self.leaf_cuts = self.session.leaf_cuts
        self._drawn_selection: tuple = ()
        self.hover: Optional[int] = None
        self.opacity = 0.45
        self._build_widgets()
        self._build_actions()
        self._connect_session()
        self._restore_layout()

    # ------------------------------------------------------------------ what tests and tools read
    @property
    def doc(self) -> Optional[ImageDoc]:
        return self.session.doc

    @property
    def docs(self) -> list[ImageDoc]:
        return self.session.docs

    @property
    def selection(self) -> list[int]:
        return self.session.selection

    @property
    def categories(self) -> list[Category]:
        return self.session.categories

    @property
    def project(self) -> Optional[Project]:
        return self.session.project

    # ================================================================== building
    def _build_widgets(self) -> None:
        self.canvas = Canvas()
        self.frontier_overlay = overlay.FrontierOverlay()
        self.canvas.clicked.connect(self._canvas_clicked)
        self.canvas.hovered.connect(self._canvas_hovered)
        self.canvas.stroked.connect(lambda points, radius: self.session.stroke(points, radius, self.canvas.tool == BRUSH))
        self.setCentralWidget(self.canvas)
        self.granularity = QSlider(Qt.Orientation.Horizontal, objectName="granularity")
        self.granularity.setRange(0, SLIDER_STEPS)
        self.granularity.setFixedWidth(SLIDER_WIDTH)
        self.granularity.setToolTip("Granularity τ: more segments to the right")
        self.granularity.valueChanged.connect(self._granularity_moved)
        self.region_only = QCheckBox("selected region only")
        self.tau_label = QLabel(minimumWidth=80)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, objectName="opacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.opacity * 100))
        self.opacity_slider.setFixedWidth(120)
        self.opacity_slider.valueChanged.connect(self._opacity_moved)
        bar = QToolBar("Granularity", objectName="toolbar_granularity")
        for widget in (QLabel(" Coarse "), self.granularity, QLabel(" Fine "), self.tau_label, self.region_only,
                       QLabel("   Opacity "), self.opacity_slider):
            bar.addWidget(widget)
        self.addToolBar(Qt.ToolBarArea.BottomToolBarArea, bar)

        self.layer_model = LayerModel(self.session.category_name)
        self._panel_structure = False                       # what the panel has still to show (`update_panel`)
        self._panel_rows: Optional[set[int]] = set()
        self._panel_timer = QTimer(self, singleShot=True, interval=PANEL_DELAY_MS)
        self._panel_timer.timeout.connect(self.update_panel)
        self.layer_model.on_visibility = self.session.set_visible
        self.layer_model.on_regroup = self.session.regroup
        self.layers = LayerPanel(self.layer_model)
        self.layers.selected.connect(lambda ids: self.session.set_selection(ids, echo=False))
        self.files = FileList()
        self.files.chosen.connect(self.session.show_image)
        self.category_panel = CategoryPanel()
        self.category_panel.chosen.connect(self.session.label_selection)
        self.category_panel.changed.connect(self.session.set_categories)
        self.category_panel.delete_requested.connect(self.session.delete_category)
        self.category_panel.reserved_ids = self.session.used_category_ids
        self.category_panel.set_categories(self.session.categories)
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
        self.cancel_button.clicked.connect(self.session.cancel_segmentation)
        self.cancel_button.hide()
        self.engine = QLabel()
        status = self.statusBar()
        status.addWidget(self.stage, 1)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.engine)
        self._show_engine()

    def _build_actions(self) -> None:
        s = self.session
        handlers: dict[str, Callable[[], object]] = {
            "open_images": self._ask_images, "open_folder": self._ask_folder_of_images,
            "close_image": s.close_image, "new_project": self._ask_new_project,
            "open_project": self._ask_open_project, "save": s.save, "export": self._export_dialog,
            "settings": self._settings_dialog, "quit": self.close, "undo": self.undo_group.undo,
            "redo": self.undo_group.redo, "merge": s.merge_selection, "split": s.split_selection,
            "parent": s.select_parent, "child": s.select_child, "ignore": s.toggle_ignore,
            "rename": self._ask_rename, "unlabel": lambda: s.label_selection(None),
            "prev_image": lambda: s.step_image(-1), "next_image": lambda: s.step_image(1),
            "resegment": s.resegment, "cancel": s.cancel_segmentation, "toggle_overlay": self.toggle_overlay,
            "fit": self.canvas.fit, "actual_size": self.canvas.actual_size,
            "zoom_in": lambda: self.canvas.zoom(1.25), "zoom_out": lambda: self.canvas.zoom(0.8),
            "finer": lambda: self.step_granularity(1), "coarser": lambda: self.step_granularity(-1),
            "dark_theme": self._toggle_theme, "help": self._help_dialog, "select_tool": self._escape,
            "brush": lambda: self.set_tool(BRUSH), "eraser": lambda: self.set_tool(ERASER),
            "brush_smaller": lambda: self.scale_brush(1 / BRUSH_STEP),
            "brush_larger": lambda: self.scale_brush(BRUSH_STEP),
            "accept_suggestion": s.accept_selection, "accept_as_one": s.accept_selection_as_one,
            "reject_suggestion": s.reject_selection,
            "accept_confident": self._accept_dialog,
        }
        self.actions_by_name: dict[str, QAction] = {}
        for name, (text, keys, tip) in SHORTCUTS.items():
            action = QAction(text, self)
            if name in ICONS:
                action.setIcon(qta.icon(ICONS[name]))
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
            action.triggered.connect(lambda _=False, d=digit: s.label_by_key(d))
            self.addAction(action)
        self._build_menus()

    def _build_menus(self) -> None:
        a = self.actions_by_name
        for title, names in MENUS.items():
            menu = self.menuBar().addMenu(title)
            for name in names:
                menu.addSeparator() if name is None else menu.addAction(a[name])
            if title == "&View":
                menu.addSeparator()
                for dock in self._docks.values():
                    menu.addAction(dock.toggleViewAction())
        toolbar = QToolBar("Main", objectName="toolbar_main")
        for name in TOOLBAR:
            toolbar.addSeparator() if name is None else toolbar.addAction(a[name])
        self.addToolBar(toolbar)
        self.layers.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        answers = ("accept_suggestion", "accept_as_one", "reject_suggestion")
        self.layers.addActions([a[n] for n in ("merge", "split", "parent", "child", "ignore", "rename", "unlabel",
                                               *answers)])
        self.canvas.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.canvas.addActions([a[n] for n in ("merge", "split", "parent", "child", "ignore", "unlabel", *answers)])

    def _connect_session(self) -> None:
        s = self.session
        s.images_changed.connect(lambda: (self.files.set_docs(s.docs), self.files.set_current(s.current)))
        s.status_changed.connect(lambda index: self.files.update_doc(index, s.docs[index]))
        s.image_shown.connect(self._show_doc)
        s.tree_edited.connect(self._tree_edited)
        s.suggestions_changed.connect(lambda rows: self.refresh(structure_changed=False, rows=rows))
        s.selection_changed.connect(self._selection_changed)
        s.message.connect(self.stage.setText)
        s.job_progress.connect(self._job_progress)
        s.settings_changed.connect(lambda: (self._show_engine(), self._sync_slider()))   # τ max maps the slider
        s.project_changed.connect(lambda: self.setWindowTitle(f"CutTree — {s.project.folder}" if s.project else "CutTree"))
        s.categories_changed.connect(self._categories_changed)
        s.problem.connect(lambda title, text: QMessageBox.warning(self, title, text))

    # ================================================================== rendering the session
    def _show_doc(self, new_image: bool) -> None:
        """Another image is shown (or the shown one has a new tree): draw it all again."""
        doc = self.session.doc
        self.files.set_current(self.session.current)
        self.hover = None
        if doc is None or not doc.ready:
            self.canvas.set_image(overlay.rgb_image(np.full((64, 64, 3), 80, np.uint8)))
            self._panel_timer.stop()
            self.layer_model.set_tree(None)
            self._drawn_selection = ()
            return
        assert doc.tree is not None and doc.image is not None
        if new_image or self.layer_model.tree is None:
            self.canvas.set_image(overlay.rgb_image(doc.image))
            self.canvas.set_atom_shape(doc.tree.shape)
            self.canvas.fit()
        else:
            self.canvas.set_atom_shape(doc.tree.shape)
        self._sync_slider()
        self.refresh()

    def _tree_edited(self, edits: Sequence[Edit]) -> None:
        tree = self.session.doc.tree
        structure = changes_structure(edits)
        granularity_only = not structure and all(edit.kind == "granularity" for edit in edits)
        self.refresh(structure, changed_rows(tree, edits), defer_panel=granularity_only)
        if any(edit.granularity is not None for edit in edits):
            self._sync_slider()

    def refresh(self, structure_changed: bool = True, rows: Optional[set[int]] = None,
                defer_panel: bool = False) -> None:
        """Redraw overlay, selection and layer panel after the tree changed.

        `rows`: the layer-panel rows that may show new values (None: all of them). With
        `defer_panel` (a granularity change) the panel follows PANEL_DELAY_MS after the last
        such change: a slider drag moves rows of the compacted panel once, not at every step."""
        doc = self.session.doc
        if doc is None or doc.tree is None or doc.image is None:
            return
        colors = {c.id: c.color for c in self.session.categories}
        box = self.frontier_overlay.update(doc.tree, colors, self.opacity)
        self.canvas.set_overlay(self.frontier_overlay.pixels, box)
        self._panel_structure |= structure_changed
        if self._panel_rows is not None:
            self._panel_rows = None if rows is None else self._panel_rows | rows
        if defer_panel:
            self._panel_timer.start()
        else:
            self.update_panel()
        if self._selection_key() != self._drawn_selection:
            self._draw_selection()
        else:
            self.stage.setText(self.session.describe())
        self._draw_hover()

    def panel_pending(self) -> bool:
        """Is a deferred layer-panel update still to come?"""
        return self._panel_timer.isActive()

    def update_panel(self) -> None:
        """Bring the layer panel to the shown tree: the rows due since the last update."""
        self._panel_timer.stop()
        doc = self.session.doc
        structure, rows = self._panel_structure, self._panel_rows
        self._panel_structure, self._panel_rows = False, set()
        tree = doc.tree if doc is not None and doc.ready else None
        if tree is None:
            return
        if self.layer_model.tree is not tree:
            self.layer_model.set_tree(tree)
            moved = True
        elif structure:
            self.layer_model.restructure(rows)
            moved = True
        else:                                   # a new frontier moves rows of the compacted panel
            moved = self.layer_model.refresh_values(rows)
        if moved:                               # moved rows leave the panel's selection
            self.layers.show_selection(self.session.selection)

    def _selection_changed(self, echo: bool) -> None:
        if echo:
            self._draw_selection()
            self._draw_hover()
        else:                                   # the layer panel chose it: it already shows it
            self._draw_mask("selection", self.session.selection, SELECT_FILL, SELECT_LINE)
            self.stage.setText(self.session.describe())

    def _selection_key(self) -> tuple:
        """Identifies the selected pixels: node ids, their atoms and the atom map's version."""
        tree = self.session.doc.tree if self.session.doc else None
        if tree is None:
            return ()
        return (id(tree), tree.atom_version, tuple(self.session.selection),
                tuple(hash(tree.nodes[n].atoms.tobytes()) for n in self.session.selection))

    def _draw_selection(self) -> None:
        self._drawn_selection = self._selection_key()
        self._draw_mask("selection", self.session.selection, SELECT_FILL, SELECT_LINE)
        self.layers.show_selection(self.session.selection)
        self.stage.setText(self.session.describe())

    def _draw_hover(self) -> None:
        ids = [self.hover] if self.hover is not None and self.hover not in self.session.selection else []
        self._draw_mask("hover", ids, HOVER_FILL, HOVER_LINE)

    def _draw_mask(self, layer: str, node_ids: list[int], fill: tuple, line: tuple) -> None:
        doc = self.session.doc
        crop = overlay.mask_index(doc.tree, node_ids) if doc and doc.tree and node_ids else None
        if crop is None:
            self.canvas.set_layer(layer, None)
        else:
            self.canvas.set_layer(layer, overlay.indexed_image(crop.index, fill, line), crop.top, crop.left)

    def _categories_changed(self) -> None:
        self.category_panel.set_categories(self.session.categories)
        self.refresh(structure_changed=False)

    def _job_progress(self, running: bool, percent: int) -> None:
        self.progress.setValue(percent)
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)

    def _show_engine(self) -> None:
        s = self.session.settings
        model = "" if s.encoder == "classic" else f" · {s.model}"
        if s.encoder == "classic":
            device = "cpu"
        else:  # only `auto` is resolved here: an unavailable explicit device is reported on use
            device = _resolved(choose_device("auto").type if s.device == "auto" else s.device, s.device)
        self.engine.setText(f"encoder: {s.encoder}{model} · device: {device}"
                            f" · method: {_resolved(s.cut_method, s.method)}")

    def toggle_overlay(self) -> None:
        self.canvas.set_layer_visible("overlay", not self.canvas.layer_visible("overlay"))

    def _opacity_moved(self, value: int) -> None:
        self.opacity = value / 100
        self.refresh(structure_changed=False)

    # ================================================================== canvas input
    def _canvas_clicked(self, row: int, col: int, modifiers: Qt.KeyboardModifier) -> None:
        doc, selection = self.session.doc, self.session.selection
        if doc is None or doc.tree is None:
            return
        nid = doc.tree.node_at(row, col)
        if not modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
            self.session.set_selection([nid])
        elif nid in selection:
            self.session.set_selection([n for n in selection if n != nid])
        else:
            self.session.set_selection(selection + [nid])

    def _canvas_hovered(self, row: int, col: int) -> None:
        doc = self.session.doc
        nid = doc.tree.node_at(row, col) if doc and doc.tree and row >= 0 else None
        if nid != self.hover:
            self.hover = nid
            self._draw_hover()

    def set_tool(self, tool: str) -> None:
        """SELECT, BRUSH or ERASER (the toolbar buttons follow)."""
        self.canvas.set_tool(tool)
        self.actions_by_name[{SELECT: "select_tool", BRUSH: "brush", ERASER: "eraser"}[tool]].setChecked(True)
        if tool != SELECT:
            self.stage.setText(f"{tool}: drag over the image; [ and ] change the size, Esc goes back to selecting")

    def _escape(self) -> None:
        """Esc leaves the brush or eraser; with the select tool it cancels a running segmentation."""
        if self.canvas.tool != SELECT:
            self.set_tool(SELECT)
        else:
            self.session.cancel_segmentation()

    def scale_brush(self, factor: float) -> None:
        self.canvas.set_brush_radius(self.canvas.brush_radius * factor)
        self.stage.setText(f"brush radius {self.canvas.brush_radius:.0f} px")

    # ================================================================== granularity
    def tau_of(self, value: int) -> float:
        return value / SLIDER_STEPS * self.session.settings.tau_max

    def step_granularity(self, direction: int) -> None:
        self.granularity.setValue(self.granularity.value() + direction * SLIDER_STEPS // 50)

    def _granularity_moved(self, value: int) -> None:
        tau = self.tau_of(value)
        s = self.session
        s.set_granularity(tau, s.selection[0] if self.region_only.isChecked() and s.selection else None)
        self.tau_label.setText(f"τ = {tau:.3f}")

    def _sync_slider(self) -> None:
        """The slider and its label show the shown image's τ."""
        tau = self.session.granularity()
        self.granularity.blockSignals(True)
        self.granularity.setValue(round(tau / self.session.settings.tau_max * SLIDER_STEPS))
        self.granularity.blockSignals(False)
        self.tau_label.setText(f"τ = {tau:.3f}")

    # ================================================================== questions and dialogs
    def _ask(self, title: str, text: str, answers: Sequence[str]) -> Optional[str]:
        """A question with these answers and Cancel; the answer, or None for Cancel."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self)
        buttons = {box.addButton(answer, QMessageBox.ButtonRole.AcceptRole): answer for answer in answers}
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        return buttons.get(box.clickedButton())

    def _ask_folder(self, title: str) -> Optional[Path]:
        folder = QFileDialog.getExistingDirectory(self, title)
        return Path(folder) if folder else None

    def _ask_images(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Open images", "",
                                                "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp);;All files (*)")
        if names:
            self.session.add_paths([Path(n) for n in names])

    def _ask_folder_of_images(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            paths = list_images(folder)
            if not paths:
                QMessageBox.information(self, "No images", f"{folder} holds no images CutTree can read.")
            self.session.add_paths(paths)

    def _ask_new_project(self) -> None:
        folder = self._ask_folder("Choose an empty folder for the new project")
        if folder:
            self._try("Cannot create the project", lambda: self.session.new_project(folder))

    def _ask_open_project(self) -> None:
        folder = self._ask_folder("Open a project folder")
        if folder:
            self._try("Cannot open the project", lambda: self.session.open_project(folder))

    def _try(self, title: str, work: Callable[[], object]) -> None:
        from core.errors import CutTreeError
        try:
            work()
        except (OSError, CutTreeError) as exc:
            QMessageBox.critical(self, title, str(exc))

    def _ask_rename(self) -> None:
        doc, selection = self.session.doc, self.session.selection
        if doc and doc.tree and len(selection) == 1:
            name, ok = QInputDialog.getText(self, "Rename region", "Name:", text=doc.tree.nodes[selection[0]].name)
            if ok:
                self.session.rename_selection(name.strip())

    def _export_dialog(self) -> None:
        from gui.dialogs.export_dialog import ExportDialog
        ExportDialog(self.session, self).exec()

    def _settings_dialog(self) -> None:
        from gui.dialogs.settings_dialog import SettingsDialog
        dialog = SettingsDialog(self.session.settings, self)
        if dialog.exec() and dialog.result_settings != self.session.settings:
            self.session.apply_settings(dialog.result_settings)

    def _accept_dialog(self) -> None:
        """Bulk accept: the confidence and scope asked in a small dialog, remembered in QSettings."""
        from gui.dialogs.accept_dialog import AcceptDialog
        q = self.qsettings
        dialog = AcceptDialog(q.value("suggestions/min_confidence", DEFAULT_MIN_CONFIDENCE, type=float),
                              q.value("suggestions/every_image", False, type=bool),
                              self.session.confident_counts, self,
                              q.value("suggestions/as_one", False, type=bool))
        if dialog.exec():
            confidence, every = dialog.confidence.value(), dialog.every_image.isChecked()
            as_one = dialog.as_one.isChecked()
            q.setValue("suggestions/min_confidence", confidence)
            q.setValue("suggestions/every_image", every)
            q.setValue("suggestions/as_one", as_one)
            self.session.accept_confident(confidence, every, as_one)

    def _help_dialog(self) -> None:
        from gui.dialogs.help_dialog import HelpDialog
        HelpDialog(self).exec()

    def _toggle_theme(self) -> None:
        from gui.theme import apply_theme
        dark = self.actions_by_name["dark_theme"].isChecked()
        apply_theme(dark=dark)
        self.qsettings.setValue("theme/dark", dark)

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
        """Closing (or Ctrl+Q) asks about edits in no project and waits for autosave writes."""
        if not self.session.may_close("Quit CutTree"):
            event.ignore()
            return
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.session.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the session's threads (a QThread still running when Qt destroys it aborts the process)."""
        self.session.shutdown()


def _resolved(value: str, requested: str) -> str:
    """A setting as it runs, marked when it was chosen automatically."""
    return f"{value} (auto)" if requested == "auto" else value
