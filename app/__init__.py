"""perse-studio: the DearPyGui desktop viewer/editor. Holds UI state only; all math lives in `perse`."""
