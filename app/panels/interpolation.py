"""Interpolation: store looks A and B, slide alpha through latent space, play/loop, named looks."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from perse.errors import PerseError


class InterpolationPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        self.playing = False
        self._last = time.perf_counter()
        self._direction = 1.0
        with dpg.group(horizontal=True):
            dpg.add_button(label="Store A", callback=studio.safe(lambda: self._store("A")))
            dpg.add_button(label="Store B", callback=studio.safe(lambda: self._store("B")))
            self.ab_text = dpg.add_text("A: -  B: -")
        self.alpha = dpg.add_slider_float(label="alpha", min_value=0.0, max_value=1.0, width=200,
                                          callback=studio.safe(lambda s, v: studio.drag(lambda: state.set_alpha(v))))
        with dpg.group(horizontal=True):
            self.play_box = dpg.add_checkbox(label="Play", callback=studio.safe(lambda s, v: self.set_playing(v)))
            self.loop_box = dpg.add_checkbox(label="Loop", default_value=True)
            self.speed = dpg.add_slider_float(label="speed", min_value=0.05, max_value=2.0, default_value=0.5, width=90)
        dpg.add_button(label="Export this morph...", callback=studio.safe(self._export_morph))
        dpg.add_separator()
        with dpg.group(horizontal=True):
            self.name_input = dpg.add_input_text(hint="look name", width=140)
            dpg.add_button(label="Save look", callback=studio.safe(self._save_named))
        self.looks_list = dpg.add_listbox([], num_items=4, width=200)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Show", callback=studio.safe(self._show_named))
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
        i = self.studio.state.interp
        if on and (i.look_a is None or i.look_b is None):
            dpg.set_value(self.play_box, False)
            raise PerseError("store a look as A and one as B first")
        self.playing = bool(on)
        self._last = time.perf_counter()
        dpg.set_value(self.play_box, self.playing)

    def tick(self) -> None:
        """Advance alpha while playing (ping-pong when looping, stop at B otherwise)."""
        if not self.playing:
            return
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        alpha = self.studio.state.interp.alpha + self._direction * dt * dpg.get_value(self.speed)
        if alpha >= 1.0 or alpha <= 0.0:
            if dpg.get_value(self.loop_box):
                self._direction *= -1.0
            else:
                self.set_playing(False)
            alpha = min(max(alpha, 0.0), 1.0)
        self.studio.state.set_alpha(alpha)
        dpg.set_value(self.alpha, alpha)

    def _export_morph(self) -> None:
        i = self.studio.state.interp
        if i.look_a is None or i.look_b is None:
            raise PerseError("store a look as A and one as B first")
        self.studio.export_panel.start_morph(i.look_a, i.look_b)

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

    def _show_named(self) -> None:
        self.studio.state.recall_look(self._selected())
        self.studio.sync_panels()

    def _named_to(self, slot: str) -> None:
        look = self.studio.state.named_looks[self._selected()]
        if slot == "A":
            self.studio.state.interp.look_a = look
        else:
            self.studio.state.interp.look_b = look
        self._update_ab_text()

    def sync(self) -> None:
        dpg.configure_item(self.looks_list, items=sorted(self.studio.state.named_looks))
        dpg.set_value(self.alpha, self.studio.state.interp.alpha)
        self._update_ab_text()
