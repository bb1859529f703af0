"""The command line's flags as studio actions (app/actions.py), and the scripted run of the headless ones.

Start-up flags, in any run: ``--attr`` and ``--expr`` before the session is restored (as a user's first
edits would be), ``--drive VIDEO`` once the window is up. Their errors end the run (exit status 2).

Headless flags (``--screenshot OUT.png``, ``--export OUT``) replace the main loop with a `ScriptedRun`:
the studio draws frame by frame until the picture has settled, then posts the export as the Export button
would (its errors go to the status line, as a user's would), waits for it, saves the screenshot and ends.
A scripted run neither restores nor saves the user's session (`StudioWindow.keep_session`).
"""

from __future__ import annotations

from app.actions import ExportForm
from app.drive_session import format_stats

MIN_FRAMES = 3  # frames before the layout, texture and first full-resolution render are all there


def look_flags(args) -> list[tuple[str, object]]:
    """--attr and --expr as actions, in the order given."""
    return [("set_attr", spec) for spec in args.attr] + [("set_expr", spec) for spec in args.expr]


def start_flags(args) -> list[tuple[str, object]]:
    """--drive as an action (the Webcam panel drives from the video from the start)."""
    return [("drive_video", args.drive)] if args.drive else []


def is_scripted(args) -> bool:
    return bool(args.screenshot or args.export)


def drive_summary(drive) -> str:
    """One line at the end of a --drive run: the Webcam panel's status and figures."""
    return f"drive: {drive.status()} | {format_stats(drive.stats())}".replace("\n", " | ")


class ScriptedRun:
    """--screenshot / --export, tick by tick (`step`), until done or the window is closed.

    studio: the `StudioWindow`, already open with the start-up flags applied."""

    def __init__(self, studio, args):
        self.studio, self.args = studio, args
        self.export_posted = False

    def settled(self) -> bool:
        """Enough frames, and the full-resolution picture of the state is on screen; with --drive, the
        first driven frame too."""
        s = self.studio
        ready = s.frames >= max(self.args.frames, MIN_FRAMES) and s.picture_settled
        return ready and (not self.args.drive or s.state.drive.samples_displayed > 0)

    def export_finished(self) -> bool:
        return self.export_posted and self.studio.state.export_job is None

    def step(self) -> bool:
        """Draw one frame and do what is due; True once the script is done."""
        self.studio.frame()
        if not self.settled():
            return False
        if self.args.export and not self.export_posted:
            self.studio.actions.post("set_export", ExportForm(out=self.args.export, preset=self.args.export_preset,
                                                              seconds=self.args.export_seconds))
            self.studio.actions.post("start_export")
            self.export_posted = True
            self.studio.process_actions()  # as the button's callback would: a refused export ends the script
        if self.args.export and not self.export_finished():
            return False
        if self.args.screenshot:
            self.studio.perform([("screenshot", self.args.screenshot)])
        return True

    def run(self) -> None:
        import dearpygui.dearpygui as dpg

        while dpg.is_dearpygui_running():
            if self.step():
                return
