"""Pictures and clips: pre/post-processing (processing.py), big pictures in tiles (tiles.py),
video (video.py), and the shared normalisation statistics both use (normstats.py)."""
