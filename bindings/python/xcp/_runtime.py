"""The typed layer's building blocks: refs, enums, records, API classes,
tasks, and the conversions of plain values (what _ffi returns) to typed
ones, driven by the model's type spellings ("set:ref:VM", "map:string:int",
"record:VM", "vm_power_state")."""
from __future__ import annotations

import datetime
import enum
from typing import (Any, Callable, Dict, Generic, List, Optional, Sequence,
                    Tuple, TypeVar)

from ._errors import Failure

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
NULL_REF = "OpaqueRef:NULL"
T = TypeVar("T")


class Ref(str):
    """A XenAPI reference ("OpaqueRef:<uuid>"). Each class has its own
    subclass (VMRef, SRRef, ...) so a type checker tells them apart; they
    are strings and compare equal to their ref string."""
    __slots__ = ()
    CLASS = ""

    @property
    def is_null(self) -> bool:
        return self in ("", NULL_REF)

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, str.__repr__(self))


class XenEnum(str, enum.Enum):
    """A XenAPI enum: members compare equal to their wire string."""

    def __str__(self) -> str:
        return str(self.value)


class Record:
    """Base of the generated record dataclasses. FIELDS lists (python name,
    model name, type spelling, qualifier) per field; a trailing "!" on the
    qualifier marks a field required at creation."""
    CLASS = ""
    FIELDS: Tuple[Tuple[str, str, str, str], ...] = ()

    @classmethod
    def from_dict(cls: Any, d: Dict[str, Any]) -> Any:
        """A record from a plain dict keyed by model field names (what a
        record looks like on the wire); missing fields take defaults."""
        kw = {}
        for py, wire, conv in _record_plan(cls):
            if wire in d:
                kw[py] = conv(d[wire])
        return cls(**kw)

    def to_struct(self, create: bool = True) -> Dict[str, Any]:
        """The record as a struct for <Class>.create: the fields settable
        at creation (not RO), as the C API's constructors send them; with
        create False, every field."""
        out: Dict[str, Any] = {}
        for py, wire, spell, qual in self.FIELDS:
            v = getattr(self, py)
            if create and qual.rstrip("!") == "RO":
                continue
            if v is None:
                continue
            out[wire] = v
        return out

    def to_dict(self) -> Dict[str, Any]:
        """Every field by its model name (values stay typed)."""
        return {wire: getattr(self, py) for py, wire, _, _ in self.FIELDS}


_PLANS: Dict[type, List[Tuple[str, str, Callable[[Any], Any]]]] = {}


def _record_plan(cls: Any) -> List[Tuple[str, str, Callable[[Any], Any]]]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = [(py, wire, converter(spell)) for py, wire, spell, _ in cls.FIELDS]
        _PLANS[cls] = plan
    return plan


def omitted(v: Any, factory: Optional[Callable[[], Any]]) -> Any:
    """A parameter left at None by the caller: its empty value."""
    if v is None and factory is not None:
        return factory()
    return v


# ---- plain -> typed conversions ---------------------------------------

_CONV: Dict[str, Callable[[Any], Any]] = {}
_REGISTRY: Dict[str, Dict[str, Any]] = {"enums": {}, "refs": {}, "records": {}}


def register(enums: Dict[str, Any], refs: Dict[str, Any],
             records: Dict[str, Any]) -> None:
    """Called by the generated model with its classes."""
    _REGISTRY["enums"].update(enums)
    _REGISTRY["refs"].update(refs)
    _REGISTRY["records"].update(records)
    _CONV.clear()


def _ident(x: Any) -> Any:
    return x


def _to_int(x: Any) -> int:
    return x if type(x) is int else int(x)


def _to_float(x: Any) -> float:
    return float(x)


def _to_bool(x: Any) -> bool:
    if isinstance(x, str):
        return x.lower() == "true"
    return bool(x)


def _to_str(x: Any) -> str:
    return x if type(x) is str else str(x)


def _to_datetime(x: Any) -> datetime.datetime:
    if isinstance(x, datetime.datetime):
        return x
    if isinstance(x, (int, float)):
        return EPOCH + datetime.timedelta(seconds=x)
    s = str(x)
    for fmt in ("%Y%m%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(s, fmt).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            pass
    return EPOCH


def _parse(tokens: List[str]) -> Callable[[Any], Any]:
    t = tokens.pop(0)
    if t == "set":
        a = _parse(tokens)
        return lambda x: [a(i) for i in x] if x is not None else []
    if t == "map":
        k = _parse(tokens)
        v = _parse(tokens)
        return lambda x: {k(a): v(b) for a, b in x.items()} if x else {}
    if t == "ref":
        cls = _REGISTRY["refs"].get(tokens.pop(0), Ref)
        return lambda x: cls(x)
    if t == "record":
        rc: Any = _REGISTRY["records"].get(tokens.pop(0))
        if rc is None:
            return _ident
        return lambda x: rc.from_dict(x) if isinstance(x, dict) else x
    simple = {"string": _to_str, "int": _to_int, "float": _to_float,
              "bool": _to_bool, "datetime": _to_datetime, "any": _ident,
              "void": lambda x: None}
    if t in simple:
        return simple[t]
    en: Any = _REGISTRY["enums"].get(t)
    if en is None:
        return _ident

    def conv_enum(x: Any) -> Any:
        try:
            return en(x)
        except ValueError:
            return x  # a value this binding does not know: its string
    return conv_enum


def converter(spell: str) -> Callable[[Any], Any]:
    """The plain -> typed conversion of a model type spelling."""
    c = _CONV.get(spell)
    if c is None:
        c = _parse(spell.split(":"))
        _CONV[spell] = c
    return c


# ---- API classes and tasks ----------------------------------------------

class ClassAPI:
    """Base of the generated per-class API objects (session.VM, ...)."""
    CLASS = ""

    def __init__(self, session: Any) -> None:
        self._session = session

    def _call(self, wire: str, spell: str, args: Sequence[Any]) -> Any:
        return converter(spell)(self._session.call(wire, *args))

    def _async(self, wire: str, spell: str, args: Sequence[Any]) -> Any:
        ref = self._session.call("Async." + wire, *args)
        return Task(self._session, ref, spell, wire)

    def __repr__(self) -> str:
        return "<xcp %s API>" % self.CLASS


class Task(Generic[T]):
    """An asynchronous call in progress (Async.<Class>.<message>): ref is
    the task's ref; wait() blocks until it completes and returns the
    result (converted as the synchronous call's), or raises the task's
    Failure. Waiting destroys the task on the server, as xcp_task_wait
    does; a second wait() returns (or raises) the same again."""

    def __init__(self, session: Any, ref: str, spell: str, wire: str) -> None:
        self._session = session
        self.ref = ref
        self.method = wire
        self._spell = spell
        self._done = False
        self._result: Any = None
        self._error: Optional[Failure] = None

    def wait(self) -> T:
        if not self._done:
            try:
                self._result = converter(self._spell)(
                    self._session._wait(self.ref))
            except Failure as f:
                self._error = f
            self._done = True
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def status(self) -> str:
        """The task's status ("pending", "success", "failure", ...)."""
        return str(self._session.call("task.get_status", self.ref))

    def cancel(self) -> None:
        """Ask for the task to be cancelled (task.cancel)."""
        self._session.call("task.cancel", self.ref)

    def __repr__(self) -> str:
        return "<xcp Task %s %s>" % (self.method, self.ref)
