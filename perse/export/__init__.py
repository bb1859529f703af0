"""Exports: animation presets, MP4 / PNG sequences, PLY snapshots."""
