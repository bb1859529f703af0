"""Drives File > New from portrait in the real studio (run by tests/test_studio.py in a subprocess):
opens the dialog, fits a portrait, screenshots the preview."""

import sys

import dearpygui.dearpygui as dpg

from studio_harness import drive


def preview(portrait):
    def action(window, findings):
        window.open_create_dialog()
        dialog = window.create_dialog
        dpg.set_value(dialog.portrait, portrait)
        window.safe(dialog.preview)()
        findings["fit_text"] = dpg.get_value(dialog.fit_text)
        findings["status"] = dpg.get_value("status_msg")
    return action


if __name__ == "__main__":
    drive(12, {3: preview(sys.argv[1])}, sys.argv[2])
