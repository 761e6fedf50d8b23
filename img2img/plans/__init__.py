"""Execution plans: how a generator's forward runs (backend, precision, memory format).

`execution.py` holds the one plan table and chooses the plan; `backend.py` is the contract
every backend follows (and the torch backend); each backend beyond torch lives in its own
file or folder (`openvino/`).
"""
