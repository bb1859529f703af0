"""Attributes: per category, the variant to move toward and a slider from the reference look to it."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.state import ATTR_RANGE


class AttributesPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        self.rows: dict[str, tuple[int, int]] = {}
        with dpg.group(horizontal=True):
            dpg.add_button(label="Reset all", callback=studio.safe(lambda: self._after(state.reset_all_attributes())))
            dpg.add_button(label="Randomize", callback=studio.safe(lambda: self._after(state.randomize_all_attributes())))
        for spec in state.avatar.categories:
            name = spec.name
            row = state.attributes[name]
            with dpg.group(horizontal=True):
                dpg.add_text(f"{name:<9}")
                combo = dpg.add_combo(list(spec.non_reference) or [spec.reference], default_value=row.variant,
                                      width=92, callback=studio.safe(lambda s, v, u=name: state.set_attribute(u, variant=v)))
                slider = dpg.add_slider_float(min_value=ATTR_RANGE[0], max_value=ATTR_RANGE[1], default_value=row.weight,
                                              width=110, format="%.2f", tag=f"attr_slider_{name}",
                                              callback=studio.safe(lambda s, v, u=name: studio.drag(
                                                  lambda: state.set_attribute(u, weight=v))))
                dpg.add_button(label="R", callback=studio.safe(lambda s, a, u=name: self._after(state.reset_attribute(u))))
                dpg.add_button(label="?", callback=studio.safe(lambda s, a, u=name: state.random_attribute(u)))
                with dpg.tooltip(combo):
                    dpg.add_text(f"reference: {spec.reference}" + (f"; none: {spec.none}" if spec.none else ""))
            self.rows[name] = (combo, slider)

    def _after(self, _=None) -> None:
        self.sync()

    def sync(self) -> None:
        for name, (combo, slider) in self.rows.items():
            row = self.studio.state.attributes[name]
            dpg.set_value(combo, row.variant)
            dpg.set_value(slider, row.weight)
