"""`register_to_config`: a module records its own constructor arguments as `self.config`.

As diffusers' decorator of the same name does: the arguments are bound against the
signature (defaults filled in) once, so no class hand-copies its parameters, and config.json
always holds exactly what the constructor takes. Values must be plain JSON values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def register_to_config(init: Callable[..., None]) -> Callable[..., None]:
    """Decorate `__init__`; afterwards `self.config == {"architecture": cls.architecture, ...}`."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = {k: v for k, v in bound.arguments.items() if k != "self"}
        init(self, *args, **kwargs)
        self.config = {"architecture": type(self).architecture, **values}

    return wrapper


def defaults_of(cls: type) -> dict[str, Any]:
    """The constructor's parameters and their defaults (every generator has one for each)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}
