"""Pictures and clips: pre/post-processing (processing.py), big pictures in tiles (tiles.py),
video (video.py, stored as its input was: encoding.py), LeRobot datasets' camera videos
(lerobot.py), and the shared normalisation statistics tiles and video use (normstats.py)."""
