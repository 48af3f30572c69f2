"""The heat-map default every caller shares (the CLI's ``--heatmap-frames``, the service's
setting, ``HeatmapOptions``), in a module that imports nothing, so building the command
line stays cheap."""

DEFAULT_HEATMAP_FRAMES = 3  # pictures per face track: its most suspicious frames
