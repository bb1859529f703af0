"""Interpolation: store looks A and B, slide alpha through latent space, play/loop, named looks."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.actions import Morph
from perse.errors import PerseError


class InterpolationPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        playback = state.playback
        with dpg.group(horizontal=True):
            dpg.add_button(label="Store A", callback=studio.safe(lambda: self._store("A")))
            dpg.add_button(label="Store B", callback=studio.safe(lambda: self._store("B")))
            self.ab_text = dpg.add_text("A: -  B: -")
        self.alpha = dpg.add_slider_float(label="alpha", min_value=0.0, max_value=1.0, width=200,
                                          callback=studio.safe(lambda s, v: studio.drag(lambda: state.set_alpha(v))))
        with dpg.group(horizontal=True):
            self.play_box = dpg.add_checkbox(label="Play", callback=studio.safe(lambda s, v: self.set_playing(v)))
            self.loop_box = dpg.add_checkbox(label="Loop", default_value=playback.loop,
                                             callback=studio.safe(lambda s, v: setattr(playback, "loop", bool(v))))
            self.speed = dpg.add_slider_float(label="speed", min_value=0.05, max_value=2.0,
                                              default_value=playback.speed, width=90,
                                              callback=studio.safe(lambda s, v: setattr(playback, "speed", float(v))))
        dpg.add_button(label="Export this morph...", callback=studio.safe(self._export_morph))
        dpg.add_separator()
        with dpg.group(horizontal=True):
            self.name_input = dpg.add_input_text(hint="look name", width=140)
            dpg.add_button(label="Save look", callback=studio.safe(self._save_named))
        self.looks_list = dpg.add_listbox([], num_items=4, width=200)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Show", callback=studio.safe(lambda: studio.actions.post("set_look", self._selected())))
            dpg.add_button(label="As A", callback=studio.safe(lambda: self._named_to("A")))
            dpg.add_button(label="As B", callback=studio.safe(lambda: self._named_to("B")))

    # -- A/B ------------------------------------------------------------------------------------
    def _store(self, slot: str) -> None:
        self.studio.state.store_look(slot)
        self._update_ab_text()
        self.studio.status(f"stored the current look as {slot}")

    def _update_ab_text(self) -> None:
        i = self.studio.state.interp
        dpg.set_value(self.ab_text, f"A: {'set' if i.look_a else '-'}  B: {'set' if i.look_b else '-'}")

    def set_playing(self, on: bool) -> None:
        try:
            self.studio.state.set_playing(on)
        finally:
            dpg.set_value(self.play_box, self.studio.state.playback.playing)

    def tick(self) -> None:
        """Show the alpha the playback moved to (`StudioState.advance` steps it)."""
        playback = self.studio.state.playback
        if playback.playing or dpg.get_value(self.play_box):
            dpg.set_value(self.alpha, self.studio.state.interp.alpha)
            dpg.set_value(self.play_box, playback.playing)  # a non-looping play stops by itself at B

    def _export_morph(self) -> None:
        self.studio.actions.post("export_morph", Morph(*self.studio.state.ab_looks()))

    # -- named looks ----------------------------------------------------------------------------
    def _save_named(self) -> None:
        name = dpg.get_value(self.name_input).strip()
        self.studio.state.store_look(name)
        self.sync()
        self.studio.status(f"saved look '{name}'")

    def _selected(self) -> str:
        name = dpg.get_value(self.looks_list)
        if not name or name not in self.studio.state.named_looks:
            raise PerseError("select a saved look first")
        return name

    def _named_to(self, slot: str) -> None:
        self.studio.state.named_to_slot(self._selected(), slot)
        self._update_ab_text()

    def sync(self) -> None:
        state = self.studio.state
        dpg.configure_item(self.looks_list, items=sorted(state.named_looks))
        dpg.set_value(self.alpha, state.interp.alpha)
        dpg.set_value(self.play_box, state.playback.playing)
        dpg.set_value(self.loop_box, state.playback.loop)
        dpg.set_value(self.speed, state.playback.speed)
        self._update_ab_text()
