"""Drives the panels' state and actions in the real studio (run by tests/test_studio.py in a subprocess under
Xvfb): Play between looks A and B, Animate, a named look shown, saved and loaded again, and a morph
exported from the Interpolation panel by the Export panel's job.

Usage: studio_actions_script.py OUT_DIR. Findings are printed as one JSON line.
"""

import sys
from pathlib import Path

import dearpygui.dearpygui as dpg

from studio_harness import drive, pump


def press(window, item, value=None) -> None:
    """Run a widget's own callback, as DearPyGui does when a user changes it."""
    dpg.get_item_callback(item)(item, value, None)


def scenario(out: Path):
    def action(window, f):
        state = window.state
        interp, expression, export = window.interpolation_panel, window.expression_panel, window.export_panel
        state.set_view(render_scale=0.25)  # the pixels do not matter here

        # -- Play needs looks A and B; without them the box stays unticked ------------------------------
        press(window, interp.play_box, True)
        f["play_without_looks"] = dpg.get_value("status_msg")
        f["play_box_without_looks"] = dpg.get_value(interp.play_box)

        # -- Play once from A to B (no loop): stops at B by itself --------------------------------------
        window.safe(lambda: interp._store("A"))()
        state.set_attribute("hair", "blonde", 1.0)
        window.safe(lambda: interp._store("B"))()
        press(window, interp.loop_box, False)
        press(window, interp.speed, 2.0)
        press(window, interp.play_box, True)
        f["playing"] = state.playback.playing
        f["play_ended"] = pump(window, until=lambda: not state.playback.playing)
        pump(window)
        f["alpha_after_play"] = state.interp.alpha
        f["alpha_slider_after_play"] = dpg.get_value(interp.alpha)
        f["play_box_after_play"] = dpg.get_value(interp.play_box)

        # -- Animate moves the expression, and stops --------------------------------------------------------
        press(window, expression.animate_box, True)
        pump(window, 0.3)
        f["animated_expression"] = float(state.pose.expression.abs().sum())
        press(window, expression.animate_box, False)
        f["animating_after_stop"] = state.playback.animating

        # -- a named look: saved, shown after a reset (set_look), written and read back --------------------
        state.set_attribute("beard", "full", 1.0)
        dpg.set_value(interp.name_input, "bearded")
        window.safe(interp._save_named)()
        saved = state.named_looks["bearded"].key()
        window.safe(lambda: state.reset_all_attributes())()
        dpg.set_value(interp.looks_list, "bearded")
        window.safe(lambda: window.actions.post("set_look", "bearded"))()
        f["shown_is_named"] = state.look().key() == saved
        looks = out / "looks.json"
        window.safe(lambda: window.actions.post("save_looks", str(looks)))()
        f["save_status"] = dpg.get_value("status_msg")
        state.named_looks.clear()
        window.safe(lambda: window.actions.post("load_looks", str(looks)))()
        f["load_status"] = dpg.get_value("status_msg")
        f["loaded_looks"] = sorted(state.named_looks)
        f["listed_looks"] = dpg.get_item_configuration(interp.looks_list)["items"]
        bad = out / "bad.json"
        bad.write_text("[1, 2]")
        window.safe(lambda: window.actions.post("load_looks", str(bad)))()
        f["bad_looks_status"] = dpg.get_value("status_msg")

        # -- Export this morph: the Export panel's job renders A -> B -> A ----------------------------------
        press(window, export.size, 32)
        press(window, export.seconds, 0.2)
        press(window, export.out, str(out / "morph.mp4"))
        window.safe(interp._export_morph)()
        f["export_preset_shown"] = dpg.get_value(export.preset)
        f["export_status"] = dpg.get_value("status_msg")
        f["export_cancel_enabled"] = dpg.get_item_configuration(export.cancel_button)["enabled"]
        f["export_done"] = pump(window, until=lambda: export.job is None)
        f["export_final_status"] = dpg.get_value("status_msg")
    return action


if __name__ == "__main__":
    out = Path(sys.argv[1])
    drive(4, {3: scenario(out)}, str(out / "final.png"))
