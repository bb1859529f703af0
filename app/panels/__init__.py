"""Studio panels: one module per panel. Each panel builds its widgets inside the current DearPyGui
container, changes the studio only through `StudioState` methods, and has `sync()` to refresh its
widgets after the state changed elsewhere (reset, random, flags, a loaded look)."""
