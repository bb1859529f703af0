"""View: field of view, background colour, render scale, reset."""

from __future__ import annotations

import dearpygui.dearpygui as dpg


class ViewPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        v = state.view
        self.fov = dpg.add_slider_float(label="field of view", min_value=8, max_value=60, default_value=v.fov, width=170,
                                        callback=studio.safe(lambda s, x: studio.drag(lambda: state.set_view(fov=x))))
        self.scale = dpg.add_slider_float(label="render scale", min_value=0.25, max_value=1.0, default_value=v.render_scale,
                                          width=170, callback=studio.safe(lambda s, x: state.set_view(render_scale=x)))
        self.bg = dpg.add_color_edit([int(c * 255) for c in v.background] + [255], label="background", no_alpha=True,
                                     width=170, callback=studio.safe(
                                         lambda s, c: state.set_view(background=color_to_unit(c))))
        dpg.add_button(label="Reset view", callback=studio.safe(lambda: self._after(state.reset_view())))

    def _after(self, _=None) -> None:
        self.sync()

    def sync(self) -> None:
        v = self.studio.state.view
        dpg.set_value(self.fov, v.fov)
        dpg.set_value(self.scale, v.render_scale)


def color_to_unit(color) -> tuple[float, float, float]:
    """DearPyGui colour values (0..255, or 0..1 depending on the widget) -> RGB in [0, 1]."""
    rgb = [float(x) for x in color[:3]]
    scale = 255.0 if max(rgb) > 1.0 else 1.0
    return tuple(min(max(x / scale, 0.0), 1.0) for x in rgb)
