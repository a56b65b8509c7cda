"""The start-up check: when Qt's xcb plugin cannot load, one message names every missing library
and the Debian/Ubuntu command that installs them, before Qt aborts on the first."""
from __future__ import annotations

import main as entry
from gui.xcb_check import debian_package, missing_libraries, wants_xcb, xcb_problem

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
"""
X11 = {"DISPLAY": ":0"}


def fake_plugin(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"\x7fELF")
    return plugin


def test_missing_libraries_are_read_from_ldd_once_each():
    assert missing_libraries(LDD) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1",
                                      "libxkbcommon-x11.so.0"]


def test_package_names_follow_the_soname():
    assert [debian_package(n) for n in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0",
                                        "libEGL.so.1", "libdbus-1.so.3", "libglib-2.0.so.0")] == \
        ["libxcb-cursor0", "libxcb-icccm4", "libxkbcommon-x11-0", "libegl1", "libdbus-1-3", "libglib2.0-0"]


def test_one_message_names_every_library_and_the_install_command(tmp_path):
    seen = []
    message = xcb_problem(X11, "linux", fake_plugin(tmp_path), ldd=lambda p: seen.append(p) or LDD)
    assert seen == [tmp_path / "libqxcb.so"] and "\n" not in message
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1, libxkbcommon-x11.so.0" in message
    assert message.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0")


def test_nothing_is_said_when_the_plugin_loads_or_is_not_used(tmp_path):
    plugin = fake_plugin(tmp_path)
    assert xcb_problem(X11, "linux", plugin, ldd=lambda p: "\tlibxcb.so.1 => /lib/libxcb.so.1\n") is None
    assert xcb_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", plugin, ldd=lambda p: LDD) is None
    assert xcb_problem(X11, "darwin", plugin, ldd=lambda p: LDD) is None
    assert xcb_problem(X11, "linux", tmp_path / "absent.so", ldd=lambda p: LDD) is None
    assert xcb_problem(X11, "linux", plugin, ldd=lambda p: "") is None          # no ldd: Qt speaks


def test_which_platform_qt_will_use():
    assert wants_xcb({}, "linux") and wants_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not wants_xcb({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux")
    assert not wants_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux")


def test_no_display_is_said_too(tmp_path):
    message = xcb_problem({}, "linux", fake_plugin(tmp_path), ldd=lambda p: "")
    assert "no X display (DISPLAY is not set)" in message


def test_the_app_prints_it_and_exits_before_qt_starts(tmp_path, monkeypatch, capsys):
    """Through main.py with no argument: exit code 1 and the message, no QApplication made."""
    import gui.app
    import gui.xcb_check
    plugin = fake_plugin(tmp_path)
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(gui.xcb_check, "plugin_path", lambda: plugin)
    monkeypatch.setattr(gui.xcb_check, "run_ldd", lambda path: LDD)
    monkeypatch.setattr(gui.app, "QApplication", None)       # Qt would abort the test run: fail instead
    assert entry.main([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in err
