"""Drives the real studio through a scripted session (run by tests/test_studio.py in a subprocess):
tiny window sizes, opening an unreadable avatar, then a screenshot. Prints one JSON line of findings."""

import json
import sys

import dearpygui.dearpygui as dpg

from app.main import parse_args
from app.window import StudioWindow
from perse.errors import PerseError


def main(junk: str, shot: str) -> int:
    window = StudioWindow(parse_args(["--backend", "cpu"]))
    findings = {}
    dpg.create_context()
    window.build()
    dpg.setup_dearpygui()
    dpg.show_viewport()
    before = window.state.path
    for step in range(40):
        window.tick()
        dpg.render_dearpygui_frame()
        if step == 5:  # shrink to absurd sizes, then back
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
        if step == 12:
            window._on_resize()
        if step == 15:
            try:
                window.open_avatar(junk)
                findings["open_junk"] = "opened?!"
            except PerseError as exc:
                findings["open_junk"] = str(exc)
            findings["kept_avatar"] = window.state.path == before
            findings["error_dialog"] = dpg.does_item_exist("error_dialog")
            dpg.delete_item("error_dialog")
        if step == 20:  # an exception inside a widget callback lands in the status line
            window.safe(lambda: window.state.set_alpha(0.5))()
            findings["status_after_bad_callback"] = dpg.get_value("status_msg")
    window._screenshot(shot)
    dpg.destroy_context()
    print(json.dumps(findings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
