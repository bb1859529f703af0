"""Studio panels: one module per panel. Each panel builds its widgets inside the current DearPyGui
container, keeps no studio state of its own (it lives in `StudioState`), changes the state through its
methods or posts actions (app/actions.py) for what reaches beyond the panel, and has `sync()` to show
the state again after it changed elsewhere (actions, reset, random, flags, a restored session)."""
