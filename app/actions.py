"""Actions: what panels, menus and the scripted run ask of the studio, by name, with a typed payload.

Panels never call one another or reach into the window: they post an action, and the dispatcher runs the
one handler registered for its name, on the main thread:

    panel / menu / scripted run --post(name, payload)--> queue --process()--> handler(studio, payload)
                                                                                  |
                                     window.sync_panels() <-- after each batch ---+

`process` runs at the start of every main-loop tick and right after every widget callback, so what a
button asks for is done before the next frame is drawn. Handlers change the studio through `StudioState`
methods and the window's few services (status line, opening an avatar, screenshots).

    load_avatar   str | Path     open another .perse file (File menu, Recent, a finished creation)
    load_looks    str | Path     add the named looks of a looks file (perse.looks.read_named_looks)
    save_looks    str | Path     write the named looks (perse.looks.write_named_looks)
    set_look      str            show a named look
    set_attr      str            CATEGORY=VARIANT[:WEIGHT] (--attr)
    set_expr      str            NAME=VALUE (--expr)
    set_export    ExportForm     fill fields of the export form (--export)
    start_export  None           render the export form's request in the background (Export button)
    export_morph  Morph          one morph A -> B -> A with the form's size, fps and output
    export_take   TakeExport     hand a take to the export form (preset "take")
    start_drive   None           drive from the Webcam panel's selected source (Start button)
    drive_video   str | Path     list a video file, select it and drive from it (--drive)
    screenshot    str | Path     save the window as a PNG (--screenshot)
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from app.export_job import ExportJob
from perse.avatar.latent import Look
from perse.errors import PerseError
from perse.looks import read_named_looks, write_named_looks
from perse.motion import Take

PATH = (str, os.PathLike)


@dataclass(frozen=True)
class Morph:
    look_a: Look
    look_b: Look


@dataclass(frozen=True)
class TakeExport:
    take: Take
    name: str = "take"    # the output file is named after it


@dataclass(frozen=True)
class ExportForm:
    """Fields of the export form to change; None leaves a field as it is."""

    preset: str | None = None
    out: str | None = None
    seconds: float | None = None
    size: int | None = None
    fps: int | None = None
    category: str | None = None

    def fields(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


class Dispatcher:
    """A registry of named actions (payload type, handler) and the queue of posted ones."""

    def __init__(self):
        self._handlers: dict[str, tuple[type | tuple, Callable[[object], None]]] = {}
        self._queue: deque[tuple[str, object]] = deque()
        self._processing = False

    def register(self, name: str, payload_type: type | tuple, handler: Callable[[object], None]) -> None:
        if name in self._handlers:
            raise ValueError(f"action {name} is registered twice")
        self._handlers[name] = (payload_type, handler)

    def post(self, name: str, payload: object = None) -> None:
        """Queue an action; an unknown name or a payload of the wrong type is a programming error."""
        if name not in self._handlers:
            raise KeyError(f"unknown action {name}")
        payload_type = self._handlers[name][0]
        if not isinstance(payload, payload_type):
            raise TypeError(f"action {name} takes {payload_type}, not {type(payload).__name__}")
        self._queue.append((name, payload))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def process(self, report: Callable[[Exception], None] | None = None) -> int:
        """Run the queued actions in order, and those their handlers post; returns how many ran.

        report(exc): where a failing action's error goes (the other actions still run). None: the error
        propagates and the rest stay queued (start-up flags end the run with it)."""
        if self._processing:  # posted from inside a handler: this same pass runs it
            return 0
        self._processing = True
        ran = 0
        try:
            while self._queue:
                name, payload = self._queue.popleft()
                ran += 1
                try:
                    self._handlers[name][1](payload)
                except Exception as exc:
                    if report is None:
                        raise
                    report(exc)
        finally:
            self._processing = False
        return ran


# -- the studio's handlers ------------------------------------------------------------------------------

def studio_dispatcher(studio) -> Dispatcher:
    """The dispatcher with every studio action. `studio`: the window (state, backend, config, status,
    open_avatar, show_panel, _screenshot)."""
    d = Dispatcher()
    d.register("load_avatar", PATH, studio.open_avatar)
    d.register("load_looks", PATH, lambda path: load_looks(studio, path))
    d.register("save_looks", PATH, lambda path: save_looks(studio, path))
    d.register("set_look", str, lambda name: studio.state.recall_look(name))
    d.register("set_attr", str, lambda spec: studio.state.apply_attr_spec(spec))
    d.register("set_expr", str, lambda spec: studio.state.apply_expr_spec(spec))
    d.register("set_export", ExportForm, lambda form: studio.state.set_export(**form.fields()))
    d.register("start_export", type(None), lambda _: start_export(studio))
    d.register("export_morph", Morph, lambda morph: export_morph(studio, morph))
    d.register("export_take", TakeExport, lambda handover: export_take(studio, handover))
    d.register("start_drive", type(None), lambda _: start_drive(studio))
    d.register("drive_video", PATH, lambda path: drive_video(studio, path))
    d.register("screenshot", PATH, lambda path: studio._screenshot(str(path)))
    return d


def load_looks(studio, path) -> None:
    state = studio.state
    state.named_looks.update(read_named_looks(path, state.avatar.latent.reference_look()))
    studio.config.looks_file = str(path)
    studio.status(f"loaded looks from {path}")


def save_looks(studio, path) -> None:
    write_named_looks(studio.state.named_looks, path)
    studio.config.looks_file = str(path)
    studio.status(f"saved {len(studio.state.named_looks)} looks to {path}")


def start_export(studio, morph: tuple[Look, Look] | None = None) -> None:
    state = studio.state
    if state.exporting:
        raise PerseError("an export is already running; cancel it first")
    settings = state.export_settings(studio.backend, morph)
    state.export_job = ExportJob(state.avatar, settings).start()
    studio.status(f"exporting {settings.preset} to {settings.out} ...")


def export_morph(studio, morph: Morph) -> None:
    studio.state.set_export(preset="morph")
    start_export(studio, (morph.look_a, morph.look_b))


def export_take(studio, handover: TakeExport) -> None:
    studio.state.hand_take_to_export(handover.take, handover.name)
    studio.show_panel("export")
    studio.status("the take is in the Export panel: set size and output, then press Export")


def start_drive(studio) -> None:
    studio.state.start_drive()
    studio.status(f"driving from {studio.state.drive_ui.selected}")


def drive_video(studio, path) -> None:
    """The --drive flag: the driven face overrides the expression sliders, so the Webcam panel is shown."""
    studio.show_panel("webcam", only=True)
    studio.state.drive_ui.add_video(Path(path))
    start_drive(studio)
