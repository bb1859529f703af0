"""How the OpenMP thread pools (torch's intra-op pool and numba's, two copies of libgomp) wait between
parallel ops. libgomp reads the setting once, when it loads: it must be in the environment before torch
or numba is imported, so this module imports neither.

Measured on the 2-core CPU: a draft's training step (steps 25-70 of a fresh avatar), two alternating runs
each, idle machine / beside one busy process:

    OMP_WAIT_POLICY=PASSIVE    0.19-0.26 s   0.19-0.20 s
    GOMP_SPINCOUNT=1000        0.15-0.17 s   0.24-0.26 s
    GOMP_SPINCOUNT=3000        0.14-0.16 s   0.32-0.33 s
    libgomp's default spin     ~0.17 s       ~0.59 s

Passive waiting pays a wake-up at every one of a step's thousands of small parallel ops, but never takes
a core from another process; spinning is the reverse. Hence two policies:

    interactive  passive; the default of every process that imports perse (the studio: its frame rate
                 shares the CPU with the UI, a webcam tracker, a background creation)
    batch        a short spin; processes that only train (`perse create`, `perse train`), which a user
                 usually runs on an otherwise idle machine
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

WAIT_POLICIES: dict[str, dict[str, str]] = {
    "interactive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "batch": {"GOMP_SPINCOUNT": "1000"},
}
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

# A user's own setting of either variable, seen before perse set anything: it always wins.
USER_SET = any(name in os.environ for name in WAIT_VARIABLES)


def wait_environment(policy: str, environ: MutableMapping[str, str], user_set: bool) -> bool:
    """Put `policy`'s variables into `environ` (replacing those of the other policy) unless the user
    set their own; returns whether `environ` changed."""
    if user_set:
        return False
    wanted = WAIT_POLICIES[policy]
    before = {name: environ.get(name) for name in WAIT_VARIABLES}
    for name in WAIT_VARIABLES:
        if name in wanted:
            environ[name] = wanted[name]
        else:
            environ.pop(name, None)
    return before != {name: environ.get(name) for name in WAIT_VARIABLES}


def use_wait_policy(policy: str) -> bool:
    """Make this process's OpenMP pools wait by `policy` ("interactive" | "batch"). Returns False, changing
    nothing, when the user set their own variables or when torch or numba has already loaded libgomp
    (a script that imported torch first keeps libgomp's default spin)."""
    if any(module in sys.modules for module in ("torch", "numba")):
        return False
    return wait_environment(policy, os.environ, USER_SET)
