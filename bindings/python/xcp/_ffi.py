"""The C side: libxcp.so through ctypes.

The binding reaches the library through a narrow surface only: sessions
(xcp_session_open_local/_remote/_close/_ref), xcp_call() with generic
values (xcp_value), xcp_task_wait(), the thread's last error and the
model's field names (for records). Values cross as plain Python (str, int,
float, bool, datetime, list, dict); the typed layer (_runtime, _model)
builds on that.

Where the library is found, first that exists: $XCP_LIBRARY (a path to the
.so), the build tree this package sits in (bindings/python/xcp ->
lib/libxcp/.libs), pkg-config's libdir of libxcp, the dynamic linker's
search (libxcp.so.0).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import os
import subprocess
import xmlrpc.client
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._errors import Failure

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)

VAL_NONE, VAL_STRING, VAL_INT, VAL_FLOAT, VAL_BOOL, VAL_DATETIME, \
    VAL_ARRAY, VAL_STRUCT, VAL_RECORD = range(9)


class Value(ctypes.Structure):
    """struct xcp_value (value.h)."""


class _Arr(ctypes.Structure):
    _fields_ = [("n", ctypes.c_size_t), ("items", ctypes.POINTER(Value))]


class _St(ctypes.Structure):
    _fields_ = [("n", ctypes.c_size_t),
                ("keys", ctypes.POINTER(ctypes.c_char_p)),
                ("vals", ctypes.POINTER(Value))]


class _Rec(ctypes.Structure):
    _fields_ = [("cls", ctypes.c_int), ("fields", ctypes.POINTER(Value))]


class _U(ctypes.Union):
    _fields_ = [("s", ctypes.c_char_p), ("i", ctypes.c_int64),
                ("f", ctypes.c_double), ("b", ctypes.c_bool),
                ("t", ctypes.c_int64), ("arr", _Arr), ("st", _St),
                ("rec", _Rec)]


Value._fields_ = [("kind", ctypes.c_int), ("u", _U)]
PValue = ctypes.POINTER(Value)


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("name", ctypes.c_char_p),
                ("nparams", ctypes.c_size_t),
                ("params", ctypes.POINTER(ctypes.c_char_p))]


class _FieldInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_char_p),
                ("qual", ctypes.c_int), ("flags", ctypes.c_uint),
                ("def_", ctypes.c_char_p)]


class OpenOptions(ctypes.Structure):
    """xcp_open_options (session.h), version 1."""
    _fields_ = [("version", ctypes.c_uint), ("state_dir", ctypes.c_char_p),
                ("hv", ctypes.c_char_p), ("originator", ctypes.c_char_p),
                ("lock_timeout_ms", ctypes.c_uint)]


class RemoteOptions(ctypes.Structure):
    """xcp_remote_options (session.h), version 1."""
    _fields_ = [("version", ctypes.c_uint), ("uri", ctypes.c_char_p),
                ("user", ctypes.c_char_p), ("password", ctypes.c_char_p),
                ("originator", ctypes.c_char_p), ("protocol", ctypes.c_int),
                ("ca_file", ctypes.c_char_p), ("insecure", ctypes.c_bool),
                ("connect_timeout_ms", ctypes.c_uint),
                ("timeout_ms", ctypes.c_uint)]


def _candidates() -> List[str]:
    out = []
    env = os.environ.get("XCP_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    out.append(os.path.join(top, "lib", "libxcp", ".libs", "libxcp.so.0"))
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "libxcp"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            out.append(os.path.join(r.stdout.strip(), "libxcp.so.0"))
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("xcp")
    if found:
        out.append(found)
    out.append("libxcp.so.0")
    return out


def _load() -> ctypes.CDLL:
    tried = []
    for c in _candidates():
        if os.path.sep in c and not os.path.exists(c):
            tried.append(c + " (absent)")
            continue
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            tried.append("%s (%s)" % (c, e))
    raise ImportError("xcp: cannot load libxcp.so; set XCP_LIBRARY to its "
                      "path. Tried: " + "; ".join(tried))


lib = _load()


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


c_char_p, c_int, c_size_t = ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
PSession = ctypes.c_void_p

session_open_local = _fn("xcp_session_open_local", c_int,
                         ctypes.POINTER(PSession), ctypes.POINTER(OpenOptions))
session_open_remote = _fn("xcp_session_open_remote", c_int,
                          ctypes.POINTER(PSession), ctypes.POINTER(RemoteOptions))
session_close = _fn("xcp_session_close", None, PSession)
session_ref = _fn("xcp_session_ref", c_char_p, PSession)
session_state_dir = _fn("xcp_session_state_dir", c_char_p, PSession)
call = _fn("xcp_call", c_int, PSession, PValue, c_char_p, c_size_t, PValue)
task_wait = _fn("xcp_task_wait", c_int, PSession, PValue, c_char_p)
error_last = _fn("xcp_error_last", ctypes.POINTER(_Error))
error_description = _fn("xcp_error_description", c_char_p, c_char_p)
value_dispose = _fn("xcp_value_dispose", None, PValue)
set_string = _fn("xcp_value_set_string", c_int, PValue, c_char_p)
set_int = _fn("xcp_value_set_int", None, PValue, ctypes.c_int64)
set_float = _fn("xcp_value_set_float", None, PValue, ctypes.c_double)
set_bool = _fn("xcp_value_set_bool", None, PValue, ctypes.c_bool)
set_datetime = _fn("xcp_value_set_datetime", None, PValue, ctypes.c_int64)
set_array = _fn("xcp_value_set_array", c_int, PValue, c_size_t)
set_struct = _fn("xcp_value_set_struct", None, PValue)
struct_add = _fn("xcp_value_struct_add", c_int, PValue, c_char_p, PValue)
class_count = _fn("xcp_class_count", c_int)
class_name = _fn("xcp_class_name", c_char_p, c_int)
class_field_count = _fn("xcp_class_field_count", c_size_t, c_int)
class_field = _fn("xcp_class_field", ctypes.POINTER(_FieldInfo), c_int, c_size_t)
version = _fn("xcp_version", c_char_p)


def last_failure(rc: int) -> Failure:
    """The thread's last error as a Failure (call right after rc < 0)."""
    e = error_last()
    if not e:
        return Failure("INTERNAL_ERROR",
                       ["libxcp returned %d without an error" % rc], rc)
    err = e.contents
    name = (err.name or b"INTERNAL_ERROR").decode("utf-8", "replace")
    params = [(err.params[i] or b"").decode("utf-8", "replace")
              for i in range(err.nparams)]
    return Failure(name, params, err.code)


def describe(name: str) -> Optional[str]:
    d = error_description(name.encode())
    return d.decode() if d else None


# ---- the model's field names, per class id, for records -----------------

_FIELD_NAMES: Dict[int, Tuple[str, ...]] = {}


def field_names(cls: int) -> Tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        n = class_field_count(cls)
        names = tuple(class_field(cls, i).contents.name.decode()
                      for i in range(n))
        _FIELD_NAMES[cls] = names
    return names


def class_name_of(cls: int) -> str:
    n = class_name(cls)
    return n.decode() if n else ""


# ---- Python -> xcp_value --------------------------------------------------

def _enc(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    if b"\0" in b:
        raise Failure("INVALID_VALUE", ["string with a NUL byte", s])
    return b


def _check(rc: int) -> None:
    if rc < 0:
        raise last_failure(rc)


def to_value(dst: Any, x: Any) -> None:
    """Fill the xcp_value at dst (a Value or pointer) from a Python value:
    str (refs, enums), bool, int, float, datetime, list/tuple/set, dict
    (string keys; other keys as their string), a record (anything with
    to_struct()), xmlrpc.client.DateTime (as its string)."""
    p = ctypes.pointer(dst) if isinstance(dst, Value) else dst
    if isinstance(x, str):
        _check(set_string(p, _enc(x)))
    elif isinstance(x, bool):
        set_bool(p, x)
    elif isinstance(x, int):
        if not -(1 << 63) <= x < (1 << 63):
            raise Failure("INVALID_VALUE", ["int64", str(x)])
        set_int(p, x)
    elif isinstance(x, float):
        set_float(p, x)
    elif isinstance(x, datetime.datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=UTC)
        set_datetime(p, int((x - EPOCH).total_seconds()))
    elif isinstance(x, (list, tuple, set, frozenset)):
        items = list(x)
        _check(set_array(p, len(items)))
        arr = p.contents.u.arr.items
        for i, it in enumerate(items):
            to_value(ctypes.pointer(arr[i]), it)
    elif isinstance(x, dict):
        set_struct(p)
        for k, v in x.items():
            tmp = Value()
            try:
                to_value(tmp, v)
                key = k if isinstance(k, str) else (
                    ("true" if k else "false") if isinstance(k, bool) else str(k))
                _check(struct_add(p, _enc(key), ctypes.pointer(tmp)))
            finally:
                value_dispose(ctypes.byref(tmp))
    elif hasattr(x, "to_struct"):
        to_value(dst, x.to_struct())
    elif isinstance(x, xmlrpc.client.DateTime):
        _check(set_string(p, _enc(x.value)))
    else:
        raise TypeError("xcp: cannot send a %s as a XenAPI value"
                        % type(x).__name__)


# ---- xcp_value -> Python ------------------------------------------------

def _dt(t: int) -> datetime.datetime:
    try:
        return EPOCH + datetime.timedelta(seconds=t)
    except OverflowError:
        return EPOCH


def from_value(v: Value) -> Any:
    """A plain Python value from an xcp_value: str, int, float, bool,
    datetime (UTC), list, dict; a record is a dict of its fields by model
    name; no value is None."""
    k = v.kind
    u = v.u
    if k == VAL_STRING:
        s = u.s
        return s.decode("utf-8", "surrogateescape") if s is not None else ""
    if k == VAL_STRUCT:
        st = u.st
        keys, vals = st.keys, st.vals
        return {keys[i].decode("utf-8", "surrogateescape"): from_value(vals[i])
                for i in range(st.n)}
    if k == VAL_RECORD:
        rec = u.rec
        fl = rec.fields
        names = field_names(rec.cls)
        return {names[i]: from_value(fl[i]) for i in range(len(names))}
    if k == VAL_ARRAY:
        arr = u.arr
        items = arr.items
        return [from_value(items[i]) for i in range(arr.n)]
    if k == VAL_INT:
        return u.i
    if k == VAL_BOOL:
        return bool(u.b)
    if k == VAL_FLOAT:
        return u.f
    if k == VAL_DATETIME:
        return _dt(u.t)
    return None


def invoke(sess: int, method: str, args: Sequence[Any]) -> Any:
    """xcp_call(sess, method, args) with plain Python values in and out;
    a XenAPI error raises Failure."""
    n = len(args)
    argv = (Value * max(n, 1))()
    res = Value()
    try:
        for i, a in enumerate(args):
            to_value(argv[i], a)
        rc = call(sess, ctypes.byref(res), _enc(method), n, argv)
        if rc < 0:
            raise last_failure(rc)
        return from_value(res)
    finally:
        for i in range(n):
            value_dispose(ctypes.byref(argv[i]))
        value_dispose(ctypes.byref(res))


def wait(sess: int, task: str) -> Any:
    """xcp_task_wait: the task's result as a plain value, or Failure."""
    res = Value()
    try:
        rc = task_wait(sess, ctypes.byref(res), _enc(task))
        if rc < 0:
            raise last_failure(rc)
        return from_value(res)
    finally:
        value_dispose(ctypes.byref(res))
