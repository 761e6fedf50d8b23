"""The OpenVINO CPU backend: the backend object of the plan table (`backend.py`), conversion
and runner (`runner.py`), normstats' statistics graphs (`stats.py`), the on-disk cache of
converted graphs (`cache.py`)."""
