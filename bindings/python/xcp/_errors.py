"""XenAPI errors as an exception."""
from __future__ import annotations

from typing import List, Optional, Sequence


class Failure(Exception):
    """A XenAPI error: name (e.g. "VM_BAD_POWER_STATE") and params, exactly
    as a XenAPI server sends them; details is [name] + params (what
    XenAPI.py's Failure carries); code is libxcp's negative return code
    (-1 for an API error, -4 for a transport failure, ...)."""

    def __init__(self, name: str, params: Optional[Sequence[str]] = None,
                 code: int = -1) -> None:
        self.name = name
        self.params: List[str] = list(params or [])
        self.code = code
        super().__init__(name, self.params)

    @property
    def details(self) -> List[str]:
        return [self.name] + self.params

    def __str__(self) -> str:
        from . import _ffi
        desc = _ffi.describe(self.name)
        s = "%s %r" % (self.name, self.params)
        return "%s: %s" % (s, desc) if desc else s
