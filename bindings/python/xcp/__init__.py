"""xcp: Python binding of libxcp, the Xen toolstack speaking XenAPI.

    import xcp
    with xcp.Session("local:/var/lib/xcp") as s:          # embedded engine
        for ref, rec in s.VM.get_all_records().items():
            print(rec.name_label, rec.power_state)
    s = xcp.Session("https://host", "root", "secret", insecure=True)

The typed API (records as dataclasses, enums, typed refs, Async tasks,
events) is generated from libxcp's model; xcp.XenAPI is a drop-in face for
scripts written for XAPI's XenAPI.py.
"""
from ._errors import Failure
from ._runtime import EPOCH, Record, Ref, Task, XenEnum
from ._model import *  # noqa: F401,F403
from ._model import ENUMS, REFS, RECORDS
from ._model import __all__ as _model_all
from . import _runtime as _rt
from ._session import EventStream, Session

_rt.register(ENUMS, REFS, RECORDS)


def version() -> str:
    """The version of the libxcp library loaded."""
    from . import _ffi
    return _ffi.version().decode()


__all__ = ["Failure", "Session", "EventStream", "Task", "Ref", "Record",
           "XenEnum", "EPOCH", "version", "ENUMS", "REFS", "RECORDS"] + \
    list(_model_all)
