"""xcp.Session: one API over an embedded engine and a remote server."""
from __future__ import annotations

import ctypes
import threading
from typing import Any, Iterator, List, Optional, Sequence

from . import _ffi
from ._errors import Failure
from ._model import SessionAPI, eventRecord


def parse_uri(uri: Optional[str]) -> Optional[str]:
    """None for the embedded engine's default state directory, "local:"
    + state dir for an embedded one, else the server URI as libxcp takes
    it (scheme://host[:port] or unix:/path; a path after the host, as
    XenAPI.py's URIs have, is dropped)."""
    if uri is None or uri in ("", "local:", "local://"):
        return None
    if uri.startswith("local:"):
        return uri
    for scheme in ("http://", "https://"):
        if uri.startswith(scheme):
            rest = uri[len(scheme):]
            host = rest.split("/", 1)[0]
            if not host:
                raise Failure("INVALID_VALUE", ["uri", uri])
            return scheme + host
    if uri.startswith("unix:"):
        return uri
    raise Failure("INVALID_VALUE", ["uri", uri])


class Session(SessionAPI):
    """A XenAPI session, embedded or remote, with the same calls.

    uri: "local:/path/to/state-dir" (or None / "local:" for the default
    state directory) runs the engine in this process; "https://host[:port]",
    "http://host[:port]" or "unix:/path/to/socket" logs in to a XenAPI
    server (xcpd or XAPI) with user and password.

    Every class of the model is an attribute (session.VM, session.SR, ...)
    with one method per message; session.Async.<Class>.<message> returns a
    Task. XenAPI errors raise xcp.Failure. A session may be shared by
    threads: calls are serialised.
    """

    def __init__(self, uri: Optional[str] = None, user: str = "root",
                 password: str = "", *, originator: str = "xcp-python",
                 insecure: bool = False, ca_file: Optional[str] = None,
                 protocol: str = "xmlrpc", timeout: Optional[float] = None,
                 connect_timeout: Optional[float] = None,
                 hv: Optional[str] = None,
                 lock_timeout: Optional[float] = None) -> None:
        self._lock = threading.Lock()
        self._h: Optional[int] = None
        self.uri = uri
        where = parse_uri(uri)
        h = _ffi.PSession()
        if where is None or where.startswith("local:"):
            opts = _ffi.OpenOptions()
            opts.version = 1
            sd = where[len("local:"):] if where else ""
            opts.state_dir = sd.encode() if sd else None
            opts.hv = hv.encode() if hv else None
            opts.originator = originator.encode()
            opts.lock_timeout_ms = int((lock_timeout or 0) * 1000)
            rc = _ffi.session_open_local(ctypes.byref(h), ctypes.byref(opts))
        else:
            if protocol not in ("xmlrpc", "jsonrpc"):
                raise Failure("INVALID_VALUE", ["protocol", protocol])
            ro = _ffi.RemoteOptions()
            ro.version = 1
            ro.uri = where.encode()
            ro.user = user.encode()
            ro.password = password.encode()
            ro.originator = originator.encode()
            ro.protocol = 1 if protocol == "jsonrpc" else 0
            ro.ca_file = ca_file.encode() if ca_file else None
            ro.insecure = bool(insecure)
            ro.connect_timeout_ms = int((connect_timeout or 0) * 1000)
            ro.timeout_ms = int((timeout or 0) * 1000)
            rc = _ffi.session_open_remote(ctypes.byref(h), ctypes.byref(ro))
        if rc < 0:
            raise _ffi.last_failure(rc)
        self._h = h.value
        self._attach_classes()

    # -- the session itself
    @property
    def ref(self) -> str:
        """The session's XenAPI reference ("OpaqueRef:...")."""
        h = self._handle()
        return _ffi.session_ref(h).decode()

    @property
    def state_dir(self) -> Optional[str]:
        """The state directory of an embedded session, None when remote."""
        d = _ffi.session_state_dir(self._handle())
        return d.decode() if d else None

    @property
    def is_local(self) -> bool:
        """True for an embedded engine."""
        return self.state_dir is not None

    def close(self) -> None:
        """Log out (remote) or release the engine (embedded). Idempotent."""
        with self._lock:
            h, self._h = self._h, None
            if h is not None:
                _ffi.session_close(h)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _handle(self) -> int:
        if self._h is None:
            raise Failure("SESSION_INVALID", ["closed"])
        return self._h

    # -- calls
    def call(self, method: str, *args: Any) -> Any:
        """Call any XenAPI message by wire name ("VM.start",
        "Async.VM.clone") with plain Python values (the session is added);
        returns a plain value: str, int, float, bool, datetime, list, dict
        (records as dicts of their fields)."""
        with self._lock:
            return _ffi.invoke(self._handle(), method, args)

    def _wait(self, task: str) -> Any:
        with self._lock:
            return _ffi.wait(self._handle(), task)

    def events(self, classes: Sequence[str] = ("*",), token: str = "",
               timeout: float = 30.0, stop_when_idle: bool = False) -> "EventStream":
        """event.from as an iterator of eventRecord (snapshot typed as the
        class's record when known): each poll waits up to timeout seconds;
        the stream ends after an idle poll only with stop_when_idle. Its
        token attribute is where the next poll starts."""
        return EventStream(self, list(classes), token, timeout, stop_when_idle)

    def __repr__(self) -> str:
        return "<xcp.Session %s>" % (self.uri or "local")


class EventStream:
    """Iterator over event.from's events (see Session.events)."""

    def __init__(self, session: Session, classes: List[str], token: str,
                 timeout: float, stop_when_idle: bool) -> None:
        self.session = session
        self.classes = classes
        self.token = token
        self.timeout = timeout
        self.stop_when_idle = stop_when_idle
        self._buf: List[eventRecord] = []

    def __iter__(self) -> Iterator[eventRecord]:
        return self

    def poll(self) -> List[eventRecord]:
        """One event.from call: the events since token (may be empty)."""
        r = self.session.call("event.from", self.classes, self.token,
                              float(self.timeout))
        self.token = r.get("token", self.token)
        out = []
        for ev in r.get("events", []):
            e = eventRecord.from_dict(ev)
            snap = ev.get("snapshot")
            if isinstance(snap, dict):
                rc = _record_class(str(ev.get("class", "")))
                if rc is not None:
                    e.snapshot = rc.from_dict(snap)
            out.append(e)
        return out

    def __next__(self) -> eventRecord:
        while not self._buf:
            self._buf = self.poll()
            if not self._buf and self.stop_when_idle:
                raise StopIteration
        return self._buf.pop(0)


def _record_class(name: str) -> Any:
    from ._model import RECORDS
    if name in RECORDS:
        return RECORDS[name]
    low = {k.lower(): v for k, v in RECORDS.items()}
    return low.get(name.lower())
