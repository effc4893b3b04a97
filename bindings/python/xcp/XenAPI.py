"""A drop-in face for scripts written for XAPI's XenAPI.py.

    from xcp import XenAPI
    session = XenAPI.Session("https://host")        # or "local:/state-dir"
    session.xenapi.login_with_password("root", "secret", "1.0", "my-script")
    for vm in session.xenapi.VM.get_all():
        print(session.xenapi.VM.get_name_label(vm))
    session.xenapi.session.logout()

Values look exactly as XenAPI.py returns them over XML-RPC: refs and
enums as strings, int64 as decimal strings (XAPI sends ints as strings),
datetimes as xmlrpc.client.DateTime, records and maps as dicts. Errors
raise XenAPI.Failure with details = [name, params...]; a session the
server ended (SESSION_INVALID) is logged in again and the call retried,
as XenAPI.py does. URIs: http://, https://, unix:/path (the server's
socket) and local:/path/to/state-dir (the engine embedded in-process;
login_with_password then opens it without checking the password, as
the engine trusts its caller).
"""
from __future__ import annotations

import datetime
import os
import ssl
import xmlrpc.client
from typing import Any, Optional, Sequence, Tuple

from . import _errors
from ._session import Session as _XcpSession

API_VERSION_1_1 = "1.1"
API_VERSION_1_2 = "1.2"


class Failure(_errors.Failure):
    """XenAPI.py's Failure: details is the XenAPI error as a list [name,
    params...]. Also an xcp.Failure (name, params)."""

    def __init__(self, details: Sequence[str]) -> None:
        d = [str(x) for x in details] or ["INTERNAL_ERROR"]
        super().__init__(d[0], d[1:])

    def __str__(self) -> str:
        return str(self.details)

    def _details_map(self) -> dict:
        return dict((str(i), d) for i, d in enumerate(self.details))


def _xmlrpc_value(x: Any) -> Any:
    """A plain value as XenAPI.py gets it over XML-RPC from XAPI."""
    if isinstance(x, bool) or isinstance(x, (str, float)):
        return x
    if isinstance(x, int):
        return str(x)
    if isinstance(x, dict):
        return {k: _xmlrpc_value(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_xmlrpc_value(v) for v in x]
    if isinstance(x, datetime.datetime):
        return xmlrpc.client.DateTime(x.strftime("%Y%m%dT%H:%M:%SZ"))
    if x is None:
        return ""
    return x


def _insecure(transport: Any, ignore_ssl: bool) -> bool:
    if ignore_ssl:
        return True
    ctx = getattr(transport, "context", None) or getattr(
        transport, "_ssl_context", None)
    return isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_NONE


class Session:
    """XenAPI.py's Session: session.xenapi.<Class>.<message>(args...),
    login_with_password / slave_local_login_with_password, logout,
    _session (the session ref, also .handle), API_version."""

    def __init__(self, uri: str, transport: Any = None, encoding: Any = None,
                 verbose: Any = 0, allow_none: Any = 1,
                 ignore_ssl: bool = False) -> None:
        self._uri = uri
        self.transport = transport
        self._insecure = _insecure(transport, ignore_ssl)
        self._x: Optional[_XcpSession] = None
        self._session: Optional[str] = None
        self.last_login_method: Optional[str] = None
        self.last_login_params: Optional[Tuple[Any, ...]] = None
        self.API_version = API_VERSION_1_1

    # -- XenAPI.py's surface
    def xenapi_request(self, methodname: str, params: Tuple[Any, ...]) -> Any:
        if methodname.startswith("login") or methodname.startswith("slave_local"):
            self._login(methodname, params)
            return None
        if methodname in ("logout", "session.logout", "session.local_logout"):
            self._logout()
            return None
        for _ in range(3):
            if self._x is None:
                if self.last_login_method:
                    self._login(self.last_login_method,
                                self.last_login_params or ())
                    continue
                raise xmlrpc.client.Fault(401, "You must log in")
            try:
                return _xmlrpc_value(self._x.call(methodname, *params))
            except _errors.Failure as f:
                if f.name != "SESSION_INVALID":
                    raise Failure(f.details) from None
                if not self.last_login_method:
                    raise xmlrpc.client.Fault(401, "You must log in")
                self._drop()
                self._login(self.last_login_method,
                            self.last_login_params or ())
            except TypeError as e:
                raise Failure(["INVALID_VALUE", str(e)]) from None
        raise xmlrpc.client.Fault(
            500, "Tried 3 times to get a valid session, but failed")

    def _open(self, params: Tuple[Any, ...]) -> _XcpSession:
        user = str(params[0]) if len(params) > 0 else "root"
        pwd = str(params[1]) if len(params) > 1 else ""
        orig = str(params[3]) if len(params) > 3 and params[3] else "XenAPI.py"
        try:
            return _XcpSession(self._uri, user, pwd, originator=orig,
                               insecure=self._insecure)
        except _errors.Failure as f:
            raise Failure(f.details) from None

    def _login(self, method: str, params: Tuple[Any, ...]) -> None:
        self._drop()
        self._x = self._open(params)
        self._session = self._x.ref
        self.last_login_method = method
        self.last_login_params = tuple(params)
        self.API_version = self._get_api_version()

    def _drop(self) -> None:
        x, self._x = self._x, None
        if x is not None:
            try:
                x.close()
            except _errors.Failure:
                pass

    def _logout(self) -> None:
        try:
            self._drop()
        finally:
            self._session = None
            self.last_login_method = None
            self.last_login_params = None
            self.API_version = API_VERSION_1_1

    def _get_api_version(self) -> str:
        x = self.xenapi
        pool = x.pool.get_all()[0]
        host = x.pool.get_master(pool)
        major = x.host.get_API_version_major(host)
        minor = x.host.get_API_version_minor(host)
        return "%s.%s" % (major, minor)

    @property
    def handle(self) -> Optional[str]:
        return self._session

    @property
    def xenapi(self) -> "_Dispatcher":
        return _Dispatcher(self.xenapi_request, None)

    def logout(self) -> None:
        self._logout()

    def close(self) -> None:
        """Log out when logged in (newer XenAPI.py's close)."""
        if self._x is not None:
            self._logout()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("login") or name.startswith("slave_local"):
            return lambda *params: self._login(name, params)
        raise AttributeError(name)


class _Dispatcher:
    """session.xenapi.VM.start -> xenapi_request("VM.start", args)."""

    def __init__(self, send: Any, name: Optional[str]) -> None:
        self.__send = send
        self.__name = name

    def __repr__(self) -> str:
        return "<XenAPI._Dispatcher for %s>" % self.__name if self.__name \
            else "<XenAPI._Dispatcher>"

    def __getattr__(self, name: str) -> "_Dispatcher":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Dispatcher(self.__send, name if self.__name is None
                           else "%s.%s" % (self.__name, name))

    def __call__(self, *args: Any) -> Any:
        return self.__send(self.__name, args)


def _default_state_dir() -> str:
    env = os.environ.get("XCP_STATE_DIR")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/xcp"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "xcp")


def xapi_local() -> Session:
    """A session on this host, as XenAPI.py's xapi_local(): the daemon's
    socket (<state dir>/xapi) when xcpd runs, else the engine embedded on
    the default state directory."""
    sd = _default_state_dir()
    sock = os.path.join(sd, "xapi")
    if os.path.exists(sock):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            return Session("unix:" + sock)
        except OSError:
            pass
        finally:
            s.close()
    return Session("local:" + sd)
