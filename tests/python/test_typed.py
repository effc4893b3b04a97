"""The typed API (xcp.Session): records, enums, refs, errors, Async tasks,
events; the same tests embedded and remote (xcpd over http, https, unix,
and JSON-RPC)."""
import ctypes
import datetime
import inspect
import keyword

import pytest

import xcp
from xcp import _ffi
from conftest import TEMPLATE
import harness


@pytest.fixture(params=["local", "http", "https", "unix", "jsonrpc"])
def session(request, state_dir):
    kind = request.param
    if kind == "local":
        s = xcp.Session("local:" + state_dir)
    else:
        d = request.getfixturevalue("daemon")
        if kind == "http":
            s = xcp.Session("http://127.0.0.1:%d/" % d.http[2],
                            harness.USER, harness.PASSWORD)
        elif kind == "jsonrpc":
            s = xcp.Session("http://127.0.0.1:%d" % d.http[2], harness.USER,
                            harness.PASSWORD, protocol="jsonrpc")
        elif kind == "https":
            s = xcp.Session("https://127.0.0.1:%d" % d.https[2],
                            harness.USER, harness.PASSWORD, insecure=True)
        else:
            s = xcp.Session("unix:" + d.unix[1], harness.USER,
                            harness.PASSWORD)
    yield s
    s.close()


def new_vm(s, name):
    tmpl = s.VM.get_by_name_label(TEMPLATE)[0]
    vm = s.VM.clone(tmpl, name)
    s.VM.provision(vm)
    return vm


def test_records_are_typed(session):
    vm = new_vm(session, "typed-1")
    assert isinstance(vm, xcp.VMRef) and vm.startswith("OpaqueRef:")
    rec = session.VM.get_record(vm)
    assert isinstance(rec, xcp.VMRecord)
    assert rec.name_label == "typed-1"
    assert rec.power_state is xcp.VmPowerState.HALTED
    assert isinstance(rec.memory_static_max, int) and rec.memory_static_max > 0
    assert all(isinstance(v, xcp.VBDRef) for v in rec.VBDs) and rec.VBDs
    assert isinstance(rec.resident_on, xcp.hostRef)
    assert all(isinstance(o, xcp.VmOperations) for o in rec.allowed_operations)
    assert xcp.VmOperations.START in rec.allowed_operations
    m = session.VM_metrics.get_record(rec.metrics)
    assert isinstance(m.last_updated, datetime.datetime)
    allrecs = session.VM.get_all_records()
    assert allrecs[vm].uuid == rec.uuid
    assert session.VM.get_by_uuid(rec.uuid) == vm


def test_setters_and_maps(session):
    vm = new_vm(session, "typed-2")
    session.VM.set_name_description(vm, "described")
    assert session.VM.get_name_description(vm) == "described"
    session.VM.add_to_other_config(vm, "k", "v")
    assert session.VM.get_other_config(vm)["k"] == "v"
    session.VM.remove_from_other_config(vm, "k")
    assert "k" not in session.VM.get_other_config(vm)
    session.VM.set_memory_limits(vm, 1 << 28, 1 << 28, 1 << 28, 1 << 28)
    assert session.VM.get_memory_static_max(vm) == 1 << 28


def test_errors_carry_name_and_params(session):
    vm = new_vm(session, "typed-3")
    session.VM.start(vm, False, False)
    assert session.VM.get_power_state(vm) == xcp.VmPowerState.RUNNING
    with pytest.raises(xcp.Failure) as e:
        session.VM.start(vm, False, False)
    assert e.value.name == "VM_BAD_POWER_STATE"
    assert e.value.params[0] == vm
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    assert "VM_BAD_POWER_STATE" in str(e.value)
    with pytest.raises(xcp.Failure) as e:
        session.VM.get_record(xcp.VMRef("OpaqueRef:nope"))
    assert e.value.name == "HANDLE_INVALID"
    with pytest.raises(xcp.Failure) as e:
        session.call("VM.start")
    assert e.value.name == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    with pytest.raises(xcp.Failure) as e:
        session.call("VM.no_such_message")
    assert e.value.name == "MESSAGE_METHOD_UNKNOWN"
    with pytest.raises(TypeError):
        session.call("VM.get_record", None)
    session.VM.hard_shutdown(vm)


def test_async_tasks(session):
    vm = new_vm(session, "typed-4")
    task = session.Async.VM.start(vm, False, False)
    assert isinstance(task, xcp.Task) and task.ref.startswith("OpaqueRef:")
    assert task.wait() is None
    assert session.VM.get_power_state(vm) is xcp.VmPowerState.RUNNING
    bad = session.Async.VM.start(vm, False, False)
    with pytest.raises(xcp.Failure) as e:
        bad.wait()
    assert e.value.name == "VM_BAD_POWER_STATE"
    with pytest.raises(xcp.Failure):
        bad.wait()  # the same outcome again
    session.VM.hard_shutdown(vm)
    clone = session.Async.VM.clone(vm, "typed-4-clone").wait()
    assert isinstance(clone, xcp.VMRef)
    assert session.VM.get_name_label(clone) == "typed-4-clone"


def test_events_iterator(session):
    vm = new_vm(session, "typed-5")
    stream = session.events(["VM"], "", 5.0, stop_when_idle=True)
    list(stream)  # everything so far, up to an idle poll
    session.VM.set_name_label(vm, "typed-5-renamed")
    stream.stop_when_idle = False
    for ev in stream:
        if ev.ref == vm and ev.operation is xcp.EventOperation.MOD:
            assert isinstance(ev, xcp.eventRecord)
            assert isinstance(ev.snapshot, xcp.VMRecord)
            assert ev.snapshot.name_label == "typed-5-renamed"
            break


def test_create_from_record(session):
    rec = xcp.VMRecord(name_label="from-record", memory_static_max=1 << 28,
                       memory_dynamic_max=1 << 28, memory_dynamic_min=1 << 28,
                       memory_static_min=1 << 28, VCPUs_max=1,
                       VCPUs_at_startup=1, other_config={"a": "b"})
    vm = session.VM.create(rec)
    got = session.VM.get_record(vm)
    assert got.name_label == "from-record" and got.other_config["a"] == "b"
    session.VM.destroy(vm)
    assert vm not in session.VM.get_all()


def test_every_message_is_a_method(state_dir):
    """The generated classes cover every message the library serves (its
    own tables, read through model.h), with the model's documentation."""
    class MsgInfo(ctypes.Structure):
        _fields_ = [("wire", ctypes.c_char_p), ("cls", ctypes.c_char_p),
                    ("nparams", ctypes.c_size_t),
                    ("param_names", ctypes.POINTER(ctypes.c_char_p)),
                    ("param_types", ctypes.POINTER(ctypes.c_char_p)),
                    ("param_defaults", ctypes.POINTER(ctypes.c_char_p)),
                    ("result", ctypes.c_char_p), ("async_", ctypes.c_bool),
                    ("session", ctypes.c_bool)]
    count = _ffi.lib.xcp_model_message_count
    count.restype = ctypes.c_size_t
    get = _ffi.lib.xcp_model_message
    get.restype = ctypes.POINTER(MsgInfo)
    get.argtypes = [ctypes.c_size_t]
    n = count()
    assert n > 500
    missing = []
    for i in range(n):
        m = get(i).contents
        cls, name = m.wire.decode().split(".", 1)
        api = getattr(xcp, cls + "API")
        meth = getattr(api, name + "_" if keyword.iskeyword(name) else name, None)
        if meth is None or not meth.__doc__:
            missing.append(m.wire.decode())
            continue
        params = list(inspect.signature(meth).parameters)[1:]
        if m.session and len(params) != m.nparams:
            missing.append(m.wire.decode() + " (arity)")
        if m.async_ and not hasattr(getattr(xcp, "Async" + cls + "API"), meth.__name__):
            missing.append("Async." + m.wire.decode())
    assert not missing, missing


def test_remote_failures(daemon, state_dir):
    with pytest.raises(xcp.Failure) as e:
        xcp.Session("http://127.0.0.1:%d" % daemon.http[2], harness.USER, "bad")
    assert e.value.name == "SESSION_AUTHENTICATION_FAILED"
    with pytest.raises(xcp.Failure) as e:
        xcp.Session("https://127.0.0.1:%d" % daemon.https[2], harness.USER,
                    harness.PASSWORD)  # self-signed: verification fails
    assert e.value.code == -4
    with pytest.raises(xcp.Failure) as e:
        xcp.Session("unix:" + state_dir + "/nothing-listens")
    assert e.value.name == "CONNECTION_FAILED"
    with pytest.raises(xcp.Failure) as e:
        xcp.Session("ftp://host")
    assert e.value.name == "INVALID_VALUE"
    s = xcp.Session("local:" + state_dir)
    s.close()
    s.close()
    with pytest.raises(xcp.Failure) as e:
        s.VM.get_all()
    assert e.value.name == "SESSION_INVALID"


def test_bad_values_get_xenapi_errors(state_dir):
    with xcp.Session("local:" + state_dir) as s:
        vm = s.VM.get_by_name_label(TEMPLATE)[0]
        for bad in ("a\0b",):
            with pytest.raises(xcp.Failure) as e:
                s.VM.set_name_label(vm, bad)
            assert e.value.name == "INVALID_VALUE"
        with pytest.raises(xcp.Failure) as e:
            s.call("VM.set_memory_static_max", vm, 1 << 70)
        assert e.value.name == "INVALID_VALUE"
        # a value of the wrong type: the engine answers as XAPI's
        # unmarshaller does, INTERNAL_ERROR "Expected int64, got ..."
        with pytest.raises(xcp.Failure) as e:
            s.call("VM.set_memory_static_max", vm, "many")
        assert e.value.params[0].startswith("Expected int64")
        with pytest.raises(xcp.Failure) as e:
            s.call("VM.start", vm, "yes", False)
        assert e.value.params[0].startswith("Expected bool")
        with pytest.raises(xcp.Failure) as e:
            s.call("VM.set_name_label", vm, "\udcff")
        assert e.value.name == "INVALID_VALUE"
        assert s.VM.get_name_label(vm) == TEMPLATE
