"""Drives the real studio through a scripted session (run by tests/test_studio.py in a subprocess):
tiny window sizes, opening an unreadable avatar, a failing callback, then a screenshot."""

import sys

import dearpygui.dearpygui as dpg

from perse.errors import PerseError
from studio_harness import drive


def shrink_and_restore(window, findings):
    for w, h in ((60, 40), (1, 1), (320, 240)):
        dpg.set_viewport_width(w)
        dpg.set_viewport_height(h)
        for _ in range(3):
            window.tick()
            dpg.render_dearpygui_frame()
        window._on_resize()
    findings["texture_after_tiny"] = [window.viewport.width, window.viewport.height]
    dpg.set_viewport_width(1280)
    dpg.set_viewport_height(800)


def open_junk(junk):
    def action(window, findings):
        before = window.state.path
        try:
            window.open_avatar(junk)
            findings["open_junk"] = "opened?!"
        except PerseError as exc:
            findings["open_junk"] = str(exc)
        findings["kept_avatar"] = window.state.path == before
        findings["error_dialog"] = dpg.does_item_exist("error_dialog")
        dpg.delete_item("error_dialog")
    return action


def failing_callback(window, findings):
    window.safe(lambda: window.state.set_alpha(0.5))()  # A/B not stored: must land in the status line
    findings["status_after_bad_callback"] = dpg.get_value("status_msg")


if __name__ == "__main__":
    junk, shot = sys.argv[1], sys.argv[2]
    drive(40, {5: shrink_and_restore, 12: lambda w, f: w._on_resize(), 15: open_junk(junk), 20: failing_callback},
          shot)
