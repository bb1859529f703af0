"""Runs the real studio headlessly for scripted GUI tests (used by the tests/studio_*_script.py files)."""

import json
import time
from typing import Callable

import dearpygui.dearpygui as dpg

from app.main import parse_args
from app.window import StudioWindow

Action = Callable[[StudioWindow, dict], None]
DEADLINE = 120.0  # seconds: generous, so a loaded machine waits longer instead of failing


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


def pump(window, seconds: float = 0.0, until=None, timeout: float = DEADLINE, each=None) -> bool:
    """Run main-loop iterations (tick + DPG frame) for `seconds`, or until `until()` (False on timeout).
    Findings never depend on how many iterations fit into `seconds`: waits that matter use `until`."""
    t0 = time.perf_counter()
    while True:
        window.tick()
        dpg.render_dearpygui_frame()
        if each is not None:
            each()
        elapsed = time.perf_counter() - t0
        if until is not None and until():
            return True
        if until is None and elapsed >= seconds:
            return True
        if elapsed > timeout:
            return False
