"""The real studio for tests/test_studio_session.py (run under Xvfb in a subprocess).

Usage: studio_session_script.py edit    -- restore, make edits, then keep running until killed
       studio_session_script.py report  -- restore, print what the studio shows as one JSON line, exit
"""

import json
import sys

import dearpygui.dearpygui as dpg
import numpy as np

from app.main import parse_args
from app.session import snapshot
from app.window import StudioWindow
from perse.motion import ParamLayout, Take


def start() -> StudioWindow:
    window = StudioWindow(parse_args(["--backend", "cpu"]))
    dpg.create_context()
    window.build()
    dpg.setup_dearpygui()
    dpg.show_viewport()
    window.notices += window.restore_session()  # what StudioWindow.run does at start-up
    return window


def frame(window) -> None:
    window.tick()
    dpg.render_dearpygui_frame()


def edit(window) -> None:
    """Change everything the session keeps, through the state methods the widgets call."""
    state = window.state
    state.set_attribute("hair", "blonde", 0.8)
    state.set_attribute("glasses", "round", 1.1)
    state.set_expression("jawOpen", 0.6)
    state.set_expression("mouthSmileLeft", 0.3)
    state.set_pose(gaze=(0.1, -0.05), head=(0.0, 0.2, 0.0), jaw=0.1)
    state.store_look("A")
    state.set_attribute("beard", "full", 1.0)
    state.store_look("B")
    state.set_alpha(0.4)
    state.store_look("kept look")
    names = state.avatar.head.expression_names
    params = np.zeros((3, ParamLayout(len(names)).size), np.float32)
    params[:, 0] = [0.0, 0.5, 1.0]
    window.webcam_panel.session.take = Take(np.array([0.0, 0.5, 1.0]), params, names)  # as if just recorded
    window.webcam_panel.session.take_path = None


if __name__ == "__main__":
    window = start()
    for _ in range(3):
        frame(window)
    if sys.argv[1] == "edit":
        edit(window)
        print(json.dumps(snapshot(window.state, [])), flush=True)  # what the test expects back
        while True:  # until the test kills this process (kill -9: no shutdown, no flush)
            frame(window)
    take = window.webcam_panel.session.take
    report = {"snapshot": snapshot(window.state, []), "status": window._status_text or " ".join(window.notices),
              "take": None if take is None else take.params.tolist(),
              "take_path": None if window.webcam_panel.session.take_path is None else str(window.webcam_panel.session.take_path)}
    dpg.destroy_context()
    print(json.dumps(report))
