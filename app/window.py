"""The studio window: menu, viewport (static texture written by GL), docked panels, status line, main loop.

Everything the studio shows is in `StudioState` (app/state.py); panels and menus change it through its
methods or post actions (app/actions.py), which the window runs once per tick and after each widget
callback. The headless flags are a scripted run of those actions (app/script.py), not part of the loop.

Threads: everything here runs on the main thread (DearPyGui and GL); exports run on a worker, and webcam
driving on capture/tracking threads that only publish their newest sample (polled by the Webcam panel).
Rendering happens when the state changed or an animation plays; while a control is being dragged
the frame renders at half resolution and refines to full resolution once the mouse stops.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from pathlib import Path

import torch

from app.actions import studio_dispatcher
from app.config import StudioConfig
from app.panels.attributes import AttributesPanel
from app.panels.expression import ExpressionPanel
from app.panels.export import ExportPanel
from app.panels.interpolation import InterpolationPanel
from app.panels.view import ViewPanel
from app.panels.webcam import WebcamPanel
from app.session import Autosaver, RecentTakes, load_session
from app.state import StudioState
from app.viewport import ViewportTexture
from perse.avatar.io import load_avatar
from perse.errors import PerseError
from perse.paths import resolve_avatar_path
from perse.render import render, resolve_backend

log = logging.getLogger("perse.studio")
DRAG_REFINE_S = 0.15    # full-resolution refine once controls were still for this long
DRAG_SCALE = 0.5        # render scale while dragging
ORBIT_DEG_PER_PX = 0.4
MENU_H, STATUS_H = 22, 26
HEADERS = ("attributes", "interpolation", "expression", "webcam", "view", "export")  # panel "<name>_header"


def disabled_theme() -> int:
    """A global theme that greys out disabled widgets (DearPyGui draws them like enabled ones by default)."""
    import dearpygui.dearpygui as dpg

    with dpg.theme() as theme:
        for kind in (dpg.mvButton, dpg.mvCombo, dpg.mvCheckbox, dpg.mvSliderFloat, dpg.mvSliderInt,
                     dpg.mvInputInt, dpg.mvInputFloat, dpg.mvInputText):
            with dpg.theme_component(kind, enabled_state=False):
                dpg.add_theme_color(dpg.mvThemeCol_Text, (110, 110, 115))
                dpg.add_theme_color(dpg.mvThemeCol_Button, (45, 47, 52))
                dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (45, 47, 52))
                dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (45, 47, 52))
                dpg.add_theme_color(dpg.mvThemeCol_FrameBg, (35, 37, 41))
                dpg.add_theme_color(dpg.mvThemeCol_FrameBgHovered, (35, 37, 41))
    return theme


class StudioWindow:
    def __init__(self, args):
        self.args = args
        self.config = StudioConfig.load()
        self.backend = resolve_backend(args.backend)
        path = resolve_avatar_path(args.avatar)
        self.state = StudioState(load_avatar(path), path)
        self.config.add_recent(path)
        # Scripted runs (--screenshot, --export) neither restore nor overwrite the user's session.
        self.keep_session = not (args.screenshot or args.export)
        self.actions = studio_dispatcher(self)
        self.takes = RecentTakes()
        self.autosaver = Autosaver(lambda: self.state, lambda: self.takes.paths)
        self.notices = [n for n in (self.config.notice,) if n]
        self.last_frame = None
        self.render_ms = self.upload_ms = 0.0
        self.fps = 0.0
        self._shown_version = -1
        self._shown_full = False
        self._last_interaction = 0.0
        self._last_mouse = None
        self._status_text = ""
        self._frame_times: list[float] = []
        self.frames = 0  # main-loop iterations drawn
        self.create_dialog = None

    # -- callbacks helpers ------------------------------------------------------------------------
    def safe(self, fn):
        """Wrap a widget callback: errors go to the status line (and the log), never kill the app; the
        actions it posted run right after it."""
        try:
            nargs = len([p for p in inspect.signature(fn).parameters.values()
                         if p.default is inspect.Parameter.empty and p.kind == p.POSITIONAL_OR_KEYWORD])
        except (TypeError, ValueError):
            nargs = 0

        def callback(sender=None, app_data=None, user_data=None):
            try:
                fn(*(sender, app_data, user_data)[:nargs])
            except Exception as exc:  # noqa: BLE001 - a UI callback must never take the app down
                self.report(exc)
            self.process_actions()
        return callback

    def report(self, exc: Exception) -> None:
        """A failed callback or action: a PerseError's one line, anything else with its type (and the
        traceback in the log)."""
        if isinstance(exc, PerseError):
            self.error(str(exc))
        else:
            log.error("callback failed:\n%s", traceback.format_exc())
            self.error(f"{type(exc).__name__}: {exc}")

    def process_actions(self, strict: bool = False) -> None:
        """Run the posted actions, then refresh the panels from the state. strict: an action's error
        propagates instead of going to the status line (start-up flags)."""
        if self.actions.process(None if strict else self.report):
            self.sync_panels()

    def perform(self, actions) -> None:
        """Post (name, payload) actions and run them now; an error propagates."""
        for name, payload in actions:
            self.actions.post(name, payload)
        self.process_actions(strict=True)

    def drag(self, change) -> None:
        """Apply a change coming from a continuous control (renders at reduced resolution meanwhile)."""
        self._last_interaction = time.perf_counter()
        change()

    def status(self, text: str) -> None:
        import dearpygui.dearpygui as dpg

        self._status_text = text
        if dpg.does_item_exist("status_msg"):
            dpg.set_value("status_msg", text)
            dpg.configure_item("status_msg", color=(200, 200, 200))

    def error(self, text: str) -> None:
        import dearpygui.dearpygui as dpg

        log.warning(text)
        self._status_text = text
        if dpg.does_item_exist("status_msg"):
            dpg.set_value("status_msg", f"error: {text}")
            dpg.configure_item("status_msg", color=(255, 110, 100))

    # -- layout -----------------------------------------------------------------------------------
    def _viewport_size(self) -> tuple[int, int]:
        import dearpygui.dearpygui as dpg

        w = dpg.get_viewport_client_width() - self.config.panel_width - 24
        h = dpg.get_viewport_client_height() - MENU_H - STATUS_H - 24
        return max(w, 16), max(h, 16)

    def build(self) -> None:
        import dearpygui.dearpygui as dpg

        w, h = self.config.window
        dpg.create_viewport(title="PERSE Studio", width=w, height=h, min_width=320, min_height=240)
        vw, vh = max(w - self.config.panel_width - 24, 16), max(h - MENU_H - STATUS_H - 60, 16)
        self.viewport = ViewportTexture(vw, vh, background=self.state.view.background)
        with dpg.window(tag="main", no_scrollbar=True):
            self._build_menu()
            with dpg.group(horizontal=True):
                with dpg.child_window(tag="view_area", width=-self.config.panel_width - 8, height=-STATUS_H,
                                      no_scrollbar=True, border=False):
                    self.image = self.viewport.add_image(tag="viewport_image")
                with dpg.child_window(tag="panels", width=self.config.panel_width, height=-STATUS_H):
                    self._build_panels()
            with dpg.group(horizontal=True):
                dpg.add_text("", tag="status_stats", color=(150, 200, 150))
                dpg.add_text("", tag="status_msg")
        dpg.set_primary_window("main", True)
        dpg.bind_theme(disabled_theme())
        dpg.set_viewport_resize_callback(self.safe(lambda: self._on_resize()))
        with dpg.handler_registry():
            dpg.add_mouse_wheel_handler(callback=self.safe(lambda s, d: self._on_wheel(d)))

    def _build_menu(self) -> None:
        import dearpygui.dearpygui as dpg

        with dpg.menu_bar():
            with dpg.menu(label="File"):
                dpg.add_menu_item(label="New from portrait...", callback=self.safe(self.open_create_dialog))
                dpg.add_menu_item(label="Open avatar...", callback=self.safe(lambda: self._file_dialog("load_avatar")))
                with dpg.menu(label="Recent", tag="recent_menu"):
                    pass
                dpg.add_separator()
                dpg.add_menu_item(label="Open looks...", callback=self.safe(lambda: self._file_dialog("load_looks")))
                dpg.add_menu_item(label="Save looks...", callback=self.safe(lambda: self._file_dialog("save_looks")))
                dpg.add_separator()
                dpg.add_menu_item(label="About", callback=self.safe(self._about))
        self._fill_recent()

    def _build_panels(self) -> None:
        import dearpygui.dearpygui as dpg

        with dpg.group(tag="panel_root"):
            with dpg.collapsing_header(label="Attributes", default_open=True, tag="attributes_header"):
                self.attributes_panel = AttributesPanel(self)
            with dpg.collapsing_header(label="Interpolation", tag="interpolation_header"):
                self.interpolation_panel = InterpolationPanel(self)
            with dpg.collapsing_header(label="Expression & pose", default_open=True, tag="expression_header"):
                self.expression_panel = ExpressionPanel(self)
            with dpg.collapsing_header(label="Webcam", tag="webcam_header"):
                self.webcam_panel = WebcamPanel(self)
            with dpg.collapsing_header(label="View", tag="view_header"):
                self.view_panel = ViewPanel(self)
            with dpg.collapsing_header(label="Export", tag="export_header"):
                self.export_panel = ExportPanel(self)

    def panels(self) -> tuple:
        return (self.attributes_panel, self.interpolation_panel, self.expression_panel, self.webcam_panel,
                self.view_panel, self.export_panel)

    def sync_panels(self) -> None:
        """Every panel shows the state again (after actions, restores, start-up flags)."""
        for panel in self.panels():
            panel.sync()

    def show_panel(self, name: str, only: bool = False) -> None:
        """Open a panel's header; only: close the others."""
        import dearpygui.dearpygui as dpg

        for header in HEADERS:
            if header == name or only:
                dpg.set_value(f"{header}_header", header == name)

    def _fill_recent(self) -> None:
        import dearpygui.dearpygui as dpg

        dpg.delete_item("recent_menu", children_only=True)
        for p in self.config.recent:
            dpg.add_menu_item(label=Path(p).name, parent="recent_menu",
                              callback=self.safe(lambda s, a, u: self.actions.post("load_avatar", u)), user_data=p)

    # -- actions ----------------------------------------------------------------------------------
    def open_avatar(self, path: str | Path) -> None:
        """Load another avatar; on failure keep the current one and show the error."""
        try:
            avatar = load_avatar(resolve_avatar_path(path))
        except PerseError as exc:
            self._error_dialog(str(exc))
            raise
        import dearpygui.dearpygui as dpg

        self.state.close()  # its export and drive session are bound to the old avatar
        self.webcam_panel.release()
        if self.keep_session:
            self.autosaver.flush()  # the old avatar's session, before the new one takes the file over
        self.state = StudioState(avatar, Path(path))
        dpg.delete_item("panel_root")
        dpg.push_container_stack("panels")
        self._build_panels()
        dpg.pop_container_stack()
        self.config.add_recent(path)
        self._fill_recent()
        notices = self.restore_session()
        self.status("; ".join([f"opened {path}"] + notices))

    # -- autosave ---------------------------------------------------------------------------------
    def restore_session(self) -> list[str]:
        """Restore the autosaved session of this avatar (after the panels exist); returns notices."""
        if not self.keep_session:
            return []
        takes, notice = load_session(self.state)
        self.takes.restore(self.state.drive, takes)
        self.sync_panels()
        self.autosaver.mark_saved()
        return [notice] if notice else []

    def open_create_dialog(self) -> None:
        from app.panels.create import CreateDialog

        self.create_dialog = CreateDialog(self)

    def _error_dialog(self, text: str) -> None:
        import dearpygui.dearpygui as dpg

        if dpg.does_item_exist("error_dialog"):
            dpg.delete_item("error_dialog")
        with dpg.window(label="Error", modal=True, tag="error_dialog", width=460, no_resize=True):
            dpg.add_text(text, wrap=440)
            dpg.add_button(label="OK", callback=lambda: dpg.delete_item("error_dialog"))

    def _file_dialog(self, action: str) -> None:
        """Choose a file for `action` (load_avatar, load_looks, save_looks), posted with its path."""
        import dearpygui.dearpygui as dpg

        ext = ".perse" if action == "load_avatar" else ".json"

        def chosen(sender, app_data):
            path = app_data.get("file_path_name")
            if path:
                self.actions.post(action, path)

        with dpg.file_dialog(label=f"Choose a {ext} file", callback=self.safe(chosen), width=640, height=420,
                             modal=True, directory_selector=False):
            dpg.add_file_extension(ext)
            dpg.add_file_extension(".*")

    def _about(self) -> None:
        import dearpygui
        import dearpygui.dearpygui as dpg
        import numba

        import perse

        lines = [f"PERSE Studio {perse.__version__}", f"torch {torch.__version__}, numba {numba.__version__}, "
                 f"dearpygui {dearpygui.__version__}",
                 f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}",
                 f"backend: {self.backend}, upload: {self.viewport.path_reason}",
                 f"avatar: {self.state.path} ({self.state.avatar.num_gaussians} Gaussians)"]
        if dpg.does_item_exist("about"):
            dpg.delete_item("about")
        with dpg.window(label="About", tag="about", width=520, modal=True):
            for line in lines:
                dpg.add_text(line)

    # -- input ------------------------------------------------------------------------------------
    def _on_resize(self) -> None:
        self.viewport.resize(*self._viewport_size())
        self.state.touch()

    def _on_wheel(self, delta: float) -> None:
        import dearpygui.dearpygui as dpg

        if dpg.is_item_hovered(self.image):
            self.drag(lambda: self.state.zoom_by(1.1 ** float(delta)))

    def _poll_mouse(self) -> None:
        """Orbit with the left button, pan with the right or middle button, on the viewport image."""
        import dearpygui.dearpygui as dpg

        pos = dpg.get_mouse_pos(local=False)
        buttons = [dpg.is_mouse_button_down(b) for b in (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right,
                                                          dpg.mvMouseButton_Middle)]
        if not any(buttons):
            self._last_mouse = None
            return
        if self._last_mouse is None:
            self._last_mouse = pos if dpg.is_item_hovered(self.image) else None
            return
        dx, dy = pos[0] - self._last_mouse[0], pos[1] - self._last_mouse[1]
        self._last_mouse = pos
        if dx == 0 and dy == 0:
            return
        if buttons[0]:
            self.drag(lambda: self.state.orbit(-dx * ORBIT_DEG_PER_PX, dy * ORBIT_DEG_PER_PX))
        else:
            scale = 0.0008 / self.state.view.zoom
            self.drag(lambda: self.state.pan_by(-dx * scale, dy * scale))

    # -- frames -----------------------------------------------------------------------------------
    def _frame_size(self, full: bool) -> tuple[int, int]:
        scale = self.state.view.render_scale * (1.0 if full else DRAG_SCALE)
        return max(16, int(self.viewport.width * scale)), max(16, int(self.viewport.height * scale))

    def render_if_needed(self) -> None:
        dragging = time.perf_counter() - self._last_interaction < DRAG_REFINE_S
        if self.state.version == self._shown_version and (self._shown_full or dragging):
            return
        full = not dragging
        w, h = self._frame_size(full)
        t0 = time.perf_counter()
        with torch.no_grad():
            state = self.state
            cam = state.camera(w, h)
            out = render(state.avatar.gaussians(state.avatar_state()), cam, backend=self.backend,
                         background=torch.tensor(state.view.background, dtype=torch.float32))
        self.render_ms = (time.perf_counter() - t0) * 1000
        self.last_frame = out.rgb.clamp(0, 1)
        ms = self.viewport.upload(self.last_frame)
        self.upload_ms = ms if ms is not None else self.upload_ms
        self._shown_version, self._shown_full = self.state.version, full

    def _update_status(self) -> None:
        import dearpygui.dearpygui as dpg

        now = time.perf_counter()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        self.fps = len(self._frame_times)
        dpg.set_value("status_stats", f"{self.backend} | {self.viewport.path} | render {self.render_ms:.0f} ms | "
                      f"upload {self.upload_ms:.1f} ms | {self.fps} fps |")

    @property
    def picture_settled(self) -> bool:
        """The viewport shows the state at full resolution."""
        return self.viewport.ready and self._shown_full

    def tick(self) -> None:
        """One iteration of the main loop (before DPG draws its frame)."""
        self.state.drive.after_display(self._shown_version)  # the previous tick's frame is on screen now
        self.process_actions()
        self._poll_mouse()
        self.state.advance()
        self.webcam_panel.tick()
        self.interpolation_panel.tick()
        self.export_panel.tick()
        if self.create_dialog is not None:
            self.create_dialog.tick()
        flushed = self.viewport.flush()
        if flushed is not None:
            self.upload_ms = flushed
        self.render_if_needed()
        self._update_status()
        if self.keep_session:
            self.takes.track(self.state.drive)
            self.autosaver.tick()

    def frame(self) -> None:
        """Tick, and DearPyGui draws the frame."""
        import dearpygui.dearpygui as dpg

        self.tick()
        dpg.render_dearpygui_frame()
        self.frames += 1
        if self.frames == 1:  # the layout is known now: fit the texture to the view area
            self._on_resize()

    # -- run --------------------------------------------------------------------------------------
    def run(self) -> int:
        """Open the window with the start-up flags applied, then run the main loop until the window is
        closed, or the scripted run of the headless flags; keep the window size for the next start."""
        import dearpygui.dearpygui as dpg

        from app.script import ScriptedRun, drive_summary, is_scripted, look_flags, start_flags

        dpg.create_context()
        try:
            self.build()
            self.perform(look_flags(self.args))
            dpg.setup_dearpygui()
            dpg.show_viewport()
            notices = self.notices + self.restore_session()
            self.status("; ".join([f"opened {self.state.path}"] + notices))
            self.perform(start_flags(self.args))
            if is_scripted(self.args):
                ScriptedRun(self, self.args).run()
            else:
                while dpg.is_dearpygui_running():
                    self.frame()
            if self.args.drive:
                print(drive_summary(self.state.drive))
            self.shutdown()
            self.config.window = (dpg.get_viewport_width(), dpg.get_viewport_height())
            self.config.save()
        finally:
            dpg.destroy_context()
        return 0

    def shutdown(self) -> None:
        """Closing the window: stop the drive threads, cancel an export and a creation (no partial files),
        save the session."""
        if self.keep_session:
            self.takes.track(self.state.drive)
            self.autosaver.flush()
        self.state.close()
        if self.create_dialog is not None:
            self.create_dialog.close()

    def _screenshot(self, path: str) -> None:
        import dearpygui.dearpygui as dpg

        from perse.io_utils import atomic_path

        self.tick()
        dpg.render_dearpygui_frame()
        with atomic_path(path) as tmp:
            dpg.output_frame_buffer(str(tmp))
            for _ in range(10):  # DPG writes the file while drawing the next frames
                dpg.render_dearpygui_frame()
                if tmp.stat().st_size > 0:
                    break
            if tmp.stat().st_size == 0:
                raise PerseError(f"DearPyGui did not write the screenshot {path}")
        print(f"wrote {path}")

