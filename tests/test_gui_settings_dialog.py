"""The settings dialog: one editor per setting, built from the settings' metadata; settings that
cannot work together disable OK with the reason shown."""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDialogButtonBox, QLineEdit

from core.settings import META, Settings
from gui.dialogs.settings_dialog import SettingsDialog


def open_dialog(qtbot, settings: Settings) -> SettingsDialog:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def ok_button(dialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_every_setting_has_an_editor_and_round_trips(qtbot):
    changed = Settings(encoder="diffusion", model="sd15", dtype="float16", seed=7, timestep=300,
                       classic_tokens=40, method="walk", walk_steps=4, min_tokens=3, pamr=True,
                       pamr_iterations=5, pamr_dilations=(1, 3), max_mask_side=1024, cache_size_mb=512,
                       allow_download=True, cache_dir="/tmp/features", reference_zero_rows=True,
                       kl_thresholds=(0.9, 1.0))
    assert set(open_dialog(qtbot, Settings()).editors) == set(META)
    dialog = open_dialog(qtbot, changed)
    assert dialog.values() == changed
    ok_button(dialog).click()
    assert dialog.result_settings == changed


def test_edits_through_the_widgets_reach_the_settings(qtbot):
    dialog = open_dialog(qtbot, Settings())
    dialog.editors["encoder"].widget.setCurrentText("diffusion")
    model = dialog.editors["model"].widget
    assert isinstance(model, QComboBox) and model.isEditable() and model.findText("segmind-vega") >= 0
    model.setCurrentText("segmind-vega")
    dialog.editors["walk_steps"].widget.setValue(6)
    dialog.editors["seed"].widget.setValue(9)
    dialog.editors["pamr"].widget.click()
    dialog.editors["pamr_dilations"].widget.setText("2, 4")
    dialog.editors["method"].widget.setCurrentText("diffseg")
    assert dialog.editors["timestep"].widget.text() == "method's default"
    dialog.editors["kl_thresholds"].widget.setText("0.9, 0.9, 0.9")
    ok_button(dialog).click()
    assert dialog.result_settings == Settings(encoder="diffusion", model="segmind-vega", walk_steps=6, seed=9,
                                              pamr=True, pamr_dilations=(2, 4), method="diffseg",
                                              kl_thresholds=(0.9, 0.9, 0.9))


def test_an_attention_method_on_the_classic_encoder_is_explained_before_ok(qtbot):
    dialog = open_dialog(qtbot, Settings())
    assert ok_button(dialog).isEnabled() and not dialog.problem.isVisible()
    dialog.editors["method"].widget.setCurrentText("diffseg")
    assert not ok_button(dialog).isEnabled()
    assert dialog.problem.isVisible() and "diffseg method needs attention maps" in dialog.problem.text()
    dialog.editors["encoder"].widget.setCurrentText("diffusion")
    assert ok_button(dialog).isEnabled() and not dialog.problem.isVisible()
    assert "features again" in dialog.effect.text()


def test_a_bad_entry_disables_ok_naming_it(qtbot):
    dialog = open_dialog(qtbot, Settings())
    dialog.editors["pamr_dilations"].widget.setText("1, two")
    assert not ok_button(dialog).isEnabled() and "pamr_dilations" in dialog.problem.text()
    dialog.editors["tau"].widget.setValue(0.3)
    dialog.editors["pamr_dilations"].widget.setText("1")
    assert ok_button(dialog).isEnabled() and "cuts the images again" in dialog.effect.text()


def test_what_the_settings_do_not_read_is_greyed(qtbot):
    dialog = open_dialog(qtbot, Settings())
    assert not dialog.editors["model"].widget.isEnabled() and dialog.editors["classic_tokens"].widget.isEnabled()
    assert not dialog.editors["pamr_iterations"].widget.isEnabled()
    dialog.editors["encoder"].widget.setCurrentText("diffusion")
    assert dialog.editors["model"].widget.isEnabled() and not dialog.editors["classic_tokens"].widget.isEnabled()
    assert isinstance(dialog.editors["pamr"].widget, QCheckBox)
    assert isinstance(dialog.editors["cache_dir"].widget, QLineEdit)
