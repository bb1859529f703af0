"""Drives File > New from portrait in the real studio (run by tests/test_studio.py in a subprocess):
opens the dialog, fits a portrait, screenshots the preview. Prints one JSON line of findings."""

import json
import sys

import dearpygui.dearpygui as dpg

from app.main import parse_args
from app.window import StudioWindow


def main(portrait: str, shot: str) -> int:
    window = StudioWindow(parse_args(["--backend", "cpu"]))
    dpg.create_context()
    window.build()
    dpg.setup_dearpygui()
    dpg.show_viewport()
    findings = {}
    for step in range(12):
        window.tick()
        dpg.render_dearpygui_frame()
        if step == 3:
            window.open_create_dialog()
            dialog = window.create_dialog
            dpg.set_value(dialog.portrait, portrait)
            window.safe(dialog.preview)()
            findings["fit_text"] = dpg.get_value(dialog.fit_text)
            findings["status"] = dpg.get_value("status_msg")
    window._screenshot(shot)
    dpg.destroy_context()
    print(json.dumps(findings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
