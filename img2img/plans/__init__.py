"""Execution plans: how a generator's forward runs (backend, precision, memory format).

`execution.py` chooses the plan; each backend beyond torch lives in its own folder
(`openvino/`).
"""
