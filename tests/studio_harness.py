"""Runs the real studio headlessly for scripted GUI tests (used by the tests/studio_*_script.py files)."""

import json
from typing import Callable

import dearpygui.dearpygui as dpg

from app.main import parse_args
from app.window import StudioWindow

Action = Callable[[StudioWindow, dict], None]


def drive(frames: int, actions: dict[int, Action], shot: str) -> dict:
    """Build the studio, run `frames` frames calling actions[step](window, findings) after that frame,
    save a screenshot, print the findings as one JSON line and return them."""
    window = StudioWindow(parse_args(["--backend", "cpu"]))
    findings: dict = {}
    dpg.create_context()
    window.build()
    dpg.setup_dearpygui()
    dpg.show_viewport()
    for step in range(frames):
        window.tick()
        dpg.render_dearpygui_frame()
        if step in actions:
            actions[step](window, findings)
    window._screenshot(shot)
    dpg.destroy_context()
    print(json.dumps(findings))
    return findings
