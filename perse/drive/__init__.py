"""`perse.drive`: live webcam puppeteering and video-driven reenactment.

    sources   WebcamSource, VideoFileSource, ImageFolderSource, list_cameras, open_source
    latest    LatestValue: latest-value hand-off between threads (never a growing queue)
    filters   OneEuroFilter
    retarget  Retargeter (landmarks -> head parameters in `perse.motion.ParamLayout` order, fixed user
              shape/focal, calibration, gain, clamping), gaze_from_irises
    driver    Driver: one frame -> DriveSample (face selection, filtering, hold/ease without a face)
    live      LiveDriver: capture + tracking threads, stats (camera fps, tracking ms, latency), recording
    reenact   track_source (video -> `perse.motion.Take`), SideBySide

The ``perse drive`` command is `perse.cli.drive`; takes and the parameter layout are `perse.motion`.
"""

from perse.drive.driver import Driver, DriveSample, DriveSettings
from perse.drive.filters import OneEuroFilter
from perse.drive.latest import LatestValue
from perse.drive.live import LiveDriver, LiveStats
from perse.drive.retarget import Retargeter, RetargetSettings, gaze_from_irises
from perse.drive.sources import (CameraLost, FrameSource, ImageFolderSource, VideoFileSource, WebcamSource,
                                 list_cameras, open_source)

__all__ = ["CameraLost", "DriveSample", "DriveSettings", "Driver", "FrameSource", "ImageFolderSource",
           "LatestValue", "LiveDriver", "LiveStats", "OneEuroFilter", "RetargetSettings", "Retargeter",
           "VideoFileSource", "WebcamSource", "gaze_from_irises", "list_cameras", "open_source"]
