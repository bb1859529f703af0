"""Expression and pose: named expression sliders, jaw, gaze, neck and head rotation, animate."""

from __future__ import annotations

import math

import dearpygui.dearpygui as dpg

DEG = math.pi / 180


class ExpressionPanel:
    def __init__(self, studio):
        self.studio = studio
        state = studio.state
        with dpg.group(horizontal=True):
            dpg.add_button(label="Reset", callback=studio.safe(lambda: self._after(state.reset_expression())))
            dpg.add_button(label="Random", callback=studio.safe(lambda: self._after(state.random_expression())))
            self.animate_box = dpg.add_checkbox(label="Animate", callback=studio.safe(lambda s, v: self.set_animate(v)))
        p = state.pose
        self.jaw = dpg.add_slider_float(label="jaw", min_value=0.0, max_value=0.45, default_value=p.jaw, width=170,
                                        callback=studio.safe(lambda s, v: studio.drag(lambda: state.set_pose(jaw=v))))
        self.gaze = dpg.add_slider_floatx(label="gaze yaw / pitch", size=2, min_value=-30, max_value=30, width=170,
                                         callback=studio.safe(lambda s, v: studio.drag(
                                             lambda: state.set_pose(gaze=(v[0] * DEG, v[1] * DEG)))))
        self.neck = dpg.add_slider_floatx(label="neck x/y/z", size=3, min_value=-30, max_value=30, width=170,
                                         callback=studio.safe(lambda s, v: studio.drag(
                                             lambda: state.set_pose(neck=tuple(x * DEG for x in v[:3])))))
        self.head = dpg.add_slider_floatx(label="head x/y/z", size=3, min_value=-45, max_value=45, width=170,
                                         callback=studio.safe(lambda s, v: studio.drag(
                                             lambda: state.set_pose(head=tuple(x * DEG for x in v[:3])))))
        self.sliders = {}
        with dpg.child_window(height=220, border=False):
            for name in state.avatar.head.expression_names:
                self.sliders[name] = dpg.add_slider_float(
                    label=name, min_value=-1.0 if name.startswith("expr") else 0.0, max_value=1.0, width=150,
                    callback=studio.safe(lambda s, v, u=name: studio.drag(lambda: state.set_expression(u, v))))

    def set_animate(self, on: bool) -> None:
        """Animate: the built-in expression loop (`StudioState.advance` plays it)."""
        self.studio.state.set_animating(on)
        dpg.set_value(self.animate_box, self.studio.state.playback.animating)

    def _after(self, _=None) -> None:
        self.sync()

    def sync(self) -> None:
        p = self.studio.state.pose
        names = self.studio.state.avatar.head.expression_names
        for i, name in enumerate(names):
            dpg.set_value(self.sliders[name], float(p.expression[i]))
        dpg.set_value(self.jaw, p.jaw)
        dpg.set_value(self.gaze, [p.gaze[0] / DEG, p.gaze[1] / DEG, 0.0, 0.0])
        dpg.set_value(self.neck, [x / DEG for x in p.neck] + [0.0])
        dpg.set_value(self.head, [x / DEG for x in p.head] + [0.0])
        dpg.set_value(self.animate_box, self.studio.state.playback.animating)
