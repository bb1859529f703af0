"""Fit a FLAME-layout head model to 2D MediaPipe landmarks: robust, regularised Levenberg-Marquardt.

What is fitted: shape (identity), expression, jaw rotation, eye rotations (only when the landmark set
has iris points skinned to the eye joints, as the built-in head's does), global head rotation, the
head's translation and the focal length of a pinhole camera whose principal point is the image centre.

Conventions of the result:
    * ``params.translation`` and ``params.neck_rot`` are zero; the fitted translation lives in the
      camera: ``camera.world_to_cam = [[R0, t], [0, 1]]`` with ``R0 = diag(1, -1, -1)`` (a camera on
      the model's +z axis looking at the face; OpenCV axes). The head therefore stays at the model
      origin, like every other view of it, and ``camera`` is the portrait's camera in the avatar's world.
    * The global rotation turns the head about the model's root joint (FLAME: neck base).
    * Errors are in pixels of the input image; ``mean_error_iod`` divides the mean reprojection error
      by the distance between the observed *outer eye corners* (MediaPipe 33 and 263).

Why Levenberg-Marquardt: the problem is small (L <= 478 landmarks, ~120 unknowns) and smooth, so a
second-order method converges in a handful of iterations. Robustness: the Huber loss per landmark,
minimised by Gauss-Newton steps with iteratively reweighted (IRLS) rows; plausibility: L2 priors on
shape, expression, jaw, eyes and focal length, and box bounds on every rotation and coefficient,
handled as an active set (a coefficient held at a bound that the gradient pushes outward leaves the
step), so bounded coefficients do not stall the iteration.

Why it is fast (per-frame tracking must stay within a few milliseconds on two CPU cores): everything
runs in float64 numpy on a reduced model with an exact, closed-form Jacobian (`reduced_model`), and the
dense algebra in small single-threaded numba kernels (`kernels`).

For video, pass ``fixed_shape`` (and ``fixed_focal``) and warm-start with the previous frame's result
via ``init``: only pose and expression are solved, converging in 2-3 iterations for frame-to-frame motion.

Modules: `kernels` (Huber IRLS, normal equations, bounded Newton step), `reduced_model` (`LandmarkHead`:
the landmarks of a head model as a function of its coefficients and joint rotations) and `fitter`
(`FitConfig`, `FitResult`, `HeadFitter`, `fit_head`).
"""

from perse.track.fit.fitter import R0, FitConfig, FitResult, HeadFitter, fit_head

__all__ = ["R0", "FitConfig", "FitResult", "HeadFitter", "fit_head"]
