"""Every keyboard shortcut in one table (shown by the help dialog, bound by the window)."""
from __future__ import annotations

# action name -> (menu text, shortcuts, help text)
SHORTCUTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "open_images": ("Open &Images…", ("Ctrl+O",), "open image files"),
    "open_folder": ("Open &Folder…", ("Ctrl+U",), "open every image of a folder"),
    "close_image": ("&Close Image", ("Ctrl+W",), "close the shown image (asks about edits in no project)"),
    "new_project": ("&New Project…", ("Ctrl+N",), "create a project from the open images"),
    "open_project": ("Open &Project…", ("Ctrl+Shift+O",), "open a project folder"),
    "save": ("&Save", ("Ctrl+S",), "save the project (autosave also runs after each edit)"),
    "export": ("&Export…", ("Ctrl+E",), "COCO instances / panoptic / semantic PNG"),
    "settings": ("Se&ttings…", ("Ctrl+,",), "encoder, model, cut method and parameters"),
    "quit": ("&Quit", ("Ctrl+Q",), "close the window"),
    "undo": ("&Undo", ("Ctrl+Z",), "undo the last edit"),
    "redo": ("&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "redo"),
    "merge": ("&Merge", ("J", "M"), "merge the selected regions"),
    "split": ("&Split", ("Alt+J", "S"), "split the selected region one level (or cut it again)"),
    "parent": ("Select &Parent", ("Alt+Up",), "select the region containing the selection"),
    "child": ("Select &Child", ("Alt+Down",), "select the first sub-region"),
    "ignore": ("&Ignore", ("I",), "mark / unmark the selection as ignored (not exported)"),
    "rename": ("Re&name…", ("F2",), "rename the selected region"),
    "unlabel": ("&Clear Label", ("0", "Backspace"), "remove the selection's category (inside a labelled region: explicitly unlabelled)"),
    "accept_suggestion": ("&Accept Suggestion", ("Return", "Enter"),
                          "label the selection with its suggested category (“? name 0.93”, dashed border); "
                          "in the Categories panel Enter labels with the category found there"),
    "accept_as_one": ("Accept as &One Region", ("Shift+Return", "Shift+Enter"),
                      "accept the selection's suggestions; sibling regions suggested the same category "
                      "become one region"),
    "reject_suggestion": ("Re&ject Suggestion", ("Delete",),
                          "refuse the selection's suggestion: never proposed there again (the next best is)"),
    "accept_confident": ("Accept Confident Su&ggestions…", ("Ctrl+Return", "Ctrl+Enter"),
                         "accept every shown suggestion at or above a confidence, on this image or all images"),
    "select_tool": ("Se&lect Tool", ("Esc",),
                    "click to select regions (leaves the brush or eraser); when already selecting, "
                    "cancels a running segmentation"),
    "brush": ("&Brush", ("B",), "drag to paint pixels into the selected region"),
    "eraser": ("&Eraser", ("E",), "drag to give the selected region's pixels to the nearest other region"),
    "brush_smaller": ("Smaller Brush", ("[",), "make the brush / eraser smaller"),
    "brush_larger": ("Larger Brush", ("]",), "make the brush / eraser larger"),
    "prev_image": ("&Previous Image", ("A",), "previous image in the list"),
    "next_image": ("Ne&xt Image", ("D",), "next image in the list"),
    "resegment": ("&Re-segment", ("Ctrl+R",), "segment the current image again"),
    "cancel": ("&Cancel Segmentation", (), "cancel the running segmentation (also Esc with the select tool)"),
    "toggle_overlay": ("Toggle &Overlay", ("V",), "show / hide the segment overlay"),
    "fit": ("&Fit Image", ("Ctrl+F",), "fit the image in the window"),
    "actual_size": ("&100%", ("Ctrl+0",), "show the image at 100%"),
    "zoom_in": ("Zoom &In", ("Ctrl++", "Ctrl+="), "zoom in"),
    "zoom_out": ("Zoom &Out", ("Ctrl+-",), "zoom out"),
    "finer": ("&Finer", ("+", "="), "raise the granularity (more segments)"),
    "coarser": ("&Coarser", ("-",), "lower the granularity (fewer segments)"),
    "dark_theme": ("&Dark Theme", ("Ctrl+Shift+T",), "switch between light and dark"),
    "help": ("&Keyboard Shortcuts", ("F1",), "this list"),
}

EXTRA_HELP = (
    ("1 … 9", "label the selection with category 1 … 9"),
    ("click / Shift+click / Ctrl+click", "select a region / add it to the selection"),
    ("drag (brush or eraser)", "paint into / erase from the selected region; one undo step per stroke"),
    ("drag rows in the Layers panel", "move regions under the row they are dropped on"),
    ("Ctrl+wheel", "zoom around the cursor"),
    ("middle drag, Space+drag", "pan"),
)
