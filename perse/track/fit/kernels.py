"""Dense numerics of the head fit (float64): Huber IRLS weights and loss, the Gauss-Newton normal
equations and the bounded Newton step.

The last two run in small single-threaded numba kernels, compiled on first use and cached on disk:
threaded BLAS/LAPACK calls on ~60x60 systems stalled for milliseconds on a busy 2-core machine.
"""

from __future__ import annotations

import numpy as np


def huber_weights(err: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weights of the Huber loss for per-landmark error norms err (L,): 1 inside delta, delta/err out."""
    return np.where(err <= delta, 1.0, delta / np.maximum(err, 1e-12))


def huber_loss(err: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of error norms (L,), scaled so that its IRLS weights are `huber_weights`:
    err^2 inside delta, 2 delta err - delta^2 outside."""
    return np.where(err <= delta, err * err, 2.0 * delta * err - delta * delta)


def bounded_newton_step(H: np.ndarray, g: np.ndarray, x: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray) -> np.ndarray:
    """A step s for the quadratic model 0.5 s^T H s + g^T s within lower <= x + s <= upper (all (n,),
    H (n, n) symmetric positive definite), by active-set refinement: variables on a bound that the
    gradient pushes outward stay there; a solve that carries others out of the box pins them on the
    bound they cross and solves again for the rest. (Clipping the unconstrained step instead throws the
    coupled variables off and often fails to descend at all.) Returns zeros if H is not positive definite."""
    return _linear_kernels()[1](np.ascontiguousarray(H, dtype=np.float64), np.asarray(g, dtype=np.float64),
                                np.asarray(x, dtype=np.float64), np.asarray(lower, dtype=np.float64),
                                np.asarray(upper, dtype=np.float64))


def normal_equations(D: np.ndarray, P: np.ndarray, E: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton normal equations of residuals r (R, L) whose Jacobian is, per column i and landmark l,
    J[:, i, l] = P[:, :, l] @ D[:, i, l] for the first n columns (D (3, n, L) point derivatives,
    P (R, 3, L) the residuals' derivatives w.r.t. the point) followed by e given columns E (e, R, L).
    Returns (J^T J (m, m), J^T r (m,)) over m = n + e columns, rows (r, l) flattened."""
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    return _linear_kernels()[0](f64(D), f64(P), f64(E), f64(r))


_KERNELS = None


def _linear_kernels():
    """The solver's dense algebra as numba kernels, compiled on first use and cached on disk.

    Single-threaded on purpose: the systems are tiny (n ~ 60), and multi-threaded BLAS/LAPACK calls on
    them (numpy's OpenBLAS, torch's MKL) measured 0.1-8 ms per solve on a busy 2-core machine, where
    these loops take ~40 us (bounded Cholesky step) and ~170 us (normal equations, 2 x 478 rows, 58 columns).
    """
    global _KERNELS
    if _KERNELS is None:
        from numba import njit

        @njit(cache=True, fastmath=True)
        def normal_equations_kernel(D, P, E, res):
            n, L = D.shape[1], D.shape[2]
            R, e = P.shape[0], E.shape[0]
            m = n + e
            Jt = np.empty((m, R, L))  # the Jacobian, transposed: one contiguous row per column
            for i in range(n):
                for q in range(R):
                    for t in range(L):
                        Jt[i, q, t] = P[q, 0, t] * D[0, i, t] + P[q, 1, t] * D[1, i, t] + P[q, 2, t] * D[2, i, t]
            Jt[n:] = E
            Jt = Jt.reshape(m, R * L)
            r = res.reshape(R * L)
            R = R * L
            A = np.empty((m, m))
            g = np.empty(m)
            for i in range(m):
                acc = 0.0
                for t in range(R):
                    acc += Jt[i, t] * r[t]
                g[i] = acc
                for j in range(i, m):
                    acc = 0.0
                    for t in range(R):
                        acc += Jt[i, t] * Jt[j, t]
                    A[i, j] = acc
                    A[j, i] = acc
            return A, g

        @njit(cache=True)
        def bounded_step_kernel(H, g, x, lower, upper):
            n = x.shape[0]
            pinned = np.zeros(n, np.bool_)
            for i in range(n):
                pinned[i] = (x[i] <= lower[i] and g[i] > 0.0) or (x[i] >= upper[i] and g[i] < 0.0)
            step = np.zeros(n)
            for _ in range(8):  # each pass pins at least one more variable, or ends
                free = np.flatnonzero(~pinned)
                m = free.shape[0]
                if m == 0:
                    break
                A = np.empty((m, m))
                b = np.empty(m)
                for a in range(m):
                    i = free[a]
                    acc = -g[i]
                    for j in range(n):
                        if pinned[j]:
                            acc -= H[i, j] * step[j]
                    b[a] = acc
                    for c in range(m):
                        A[a, c] = H[i, free[c]]
                # Cholesky A = L L^T (in place, lower triangle), then two triangular solves into b.
                for j in range(m):
                    acc = A[j, j]
                    for k in range(j):
                        acc -= A[j, k] * A[j, k]
                    if not acc > 0.0:  # not positive definite: no step (the caller raises the damping)
                        return np.zeros(n)
                    A[j, j] = np.sqrt(acc)
                    for i in range(j + 1, m):
                        acc = A[i, j]
                        for k in range(j):
                            acc -= A[i, k] * A[j, k]
                        A[i, j] = acc / A[j, j]
                for i in range(m):
                    for k in range(i):
                        b[i] -= A[i, k] * b[k]
                    b[i] /= A[i, i]
                for i in range(m - 1, -1, -1):
                    for k in range(i + 1, m):
                        b[i] -= A[k, i] * b[k]
                    b[i] /= A[i, i]
                sol = b
                crossed = False
                for a in range(m):
                    i = free[a]
                    step[i] = sol[a]
                    if x[i] + sol[a] < lower[i]:
                        step[i], pinned[i], crossed = lower[i] - x[i], True, True
                    elif x[i] + sol[a] > upper[i]:
                        step[i], pinned[i], crossed = upper[i] - x[i], True, True
                if not crossed:
                    break
            for i in range(n):
                step[i] = min(max(x[i] + step[i], lower[i]), upper[i]) - x[i]
            return step

        _KERNELS = (normal_equations_kernel, bounded_step_kernel)
    return _KERNELS
