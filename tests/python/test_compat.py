"""xcp.XenAPI, the XenAPI.py face: the scenarios of the XenAPI.py interop
test (tests/server/interop_xenapi.py, whose code runs here unchanged)
embedded in-process, and remote through the binding; values shaped as
XenAPI.py returns them over XML-RPC."""
import xmlrpc.client

import pytest

import harness
import interop_xenapi
import xcp
from xcp import XenAPI


def run(kind, uri, end_session, x=None):
    checks = harness.Checks("compat-" + kind)
    x = x or XenAPI.Session(uri)
    interop_xenapi.run_scenario(checks, XenAPI, x, kind, end_session)
    assert checks.failed == 0 and checks.passed > 5


def test_scenario_embedded():
    d = harness.Daemon("compat")  # its state dir and xe, no daemon started
    try:
        d.make_vms(["local-a", "local-b"])
        uri = "local:" + d.state
        x = XenAPI.Session(uri)

        def end_session(ref):
            # The engine ends the face's session behind its back: the
            # binding's own session logs out (session.logout takes no
            # other session's ref; XenAPI.py's test ends it from another
            # connection instead).
            assert x._x.ref == ref
            x._x.call("session.logout")
        run("local", uri, end_session, x)
    finally:
        d.cleanup()


@pytest.mark.parametrize("kind", ["http", "unix"])
def test_scenario_remote(daemon, kind):
    d = daemon
    x = XenAPI.Session("unix:" + d.unix[1])
    x.xenapi.login_with_password(harness.USER, harness.PASSWORD)
    tmpl = x.xenapi.VM.get_by_name_label(harness.TEMPLATE)[0]
    for v in "ab":
        vm = x.xenapi.VM.clone(tmpl, "%s-%s" % (kind, v))
        x.xenapi.VM.provision(vm)
    x.xenapi.session.logout()
    uri = ("http://127.0.0.1:%d/" % d.http[2]) if kind == "http" \
        else "unix:" + d.unix[1]

    def end_session(ref):
        raw = harness.XenAPI(d.http)
        s = raw.login()
        raw.call("session.logout", ref)
        raw.call("session.logout", s)
    run(kind, uri, end_session)


def test_values_look_like_xmlrpc(state_dir):
    x = XenAPI.Session("local:" + state_dir)
    x.xenapi.login_with_password("root", "", "1.0", "compat-test")
    host = x.xenapi.host.get_all()[0]
    rec = x.xenapi.host.get_record(host)
    assert isinstance(host, str) and host.startswith("OpaqueRef:")
    assert isinstance(rec["API_version_major"], str)
    assert rec["API_version_major"].isdigit()
    metrics = x.xenapi.host_metrics.get_record(rec["metrics"])
    assert isinstance(metrics["memory_total"], str)
    assert isinstance(metrics["last_updated"], xmlrpc.client.DateTime)
    assert isinstance(rec["enabled"], bool)
    tmpl = x.xenapi.VM.get_by_name_label(harness.TEMPLATE)[0]
    vm = x.xenapi.VM.clone(tmpl, "compat-values")
    # ints given as strings, as XenAPI.py scripts send them
    x.xenapi.VM.set_memory_limits(vm, "268435456", "268435456",
                                  "268435456", "268435456")
    assert x.xenapi.VM.get_memory_static_max(vm) == "268435456"
    with pytest.raises(XenAPI.Failure) as e:
        x.xenapi.VM.get_record("OpaqueRef:nope")
    assert e.value.details[0] == "HANDLE_INVALID"
    assert isinstance(e.value, xcp.Failure)
    ev = getattr(x.xenapi.event, "from")(["VM"], "", 0.0)
    assert isinstance(ev["token"], str) and isinstance(ev["events"], list)
    x.xenapi.session.logout()
    with pytest.raises(xmlrpc.client.Fault):
        x.xenapi.VM.get_all()


def test_login_failure_remote(daemon):
    x = XenAPI.Session("http://127.0.0.1:%d" % daemon.http[2])
    with pytest.raises(XenAPI.Failure) as e:
        x.xenapi.login_with_password(harness.USER, "wrong")
    assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"


def test_xapi_local(state_dir, monkeypatch):
    monkeypatch.setenv("XCP_STATE_DIR", state_dir)
    x = XenAPI.xapi_local()
    x.xenapi.login_with_password("root", "")
    assert len(x.xenapi.host.get_all()) == 1
    x.xenapi.logout()


def test_values_equal_xenapi_py(daemon):
    """The face returns what XAPI's XenAPI.py itself returns from the same
    server: the same records, value for value and type for type."""
    path = interop_xenapi.fetch_module()
    if path is None:
        pytest.skip("cannot get XenAPI.py (python3-os-xenapi) from Debian")
    Real = interop_xenapi.load(path)
    real = Real.Session("http://127.0.0.1:%d/" % daemon.http[2])
    real.xenapi.login_with_password(harness.USER, harness.PASSWORD, "1.0", "t")
    ours = XenAPI.Session("http://127.0.0.1:%d/" % daemon.http[2])
    ours.xenapi.login_with_password(harness.USER, harness.PASSWORD, "1.0", "t")

    def typed(v):
        if isinstance(v, dict):
            return {k: typed(w) for k, w in v.items()}
        if isinstance(v, list):
            return [typed(w) for w in v]
        return (type(v).__name__, str(v))
    try:
        for cls in ("VM", "SR", "VDI", "network", "pool"):
            want = getattr(real.xenapi, cls).get_all_records()
            got = getattr(ours.xenapi, cls).get_all_records()
            assert typed(got) == typed(want), cls
        assert ours.API_version == real.API_version
    finally:
        real.xenapi.session.logout()
        ours.xenapi.session.logout()
