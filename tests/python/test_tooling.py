"""Packaging and tooling: the generated module is current, mypy accepts the
package and typed use (and rejects misuse), pip installs the package
offline and the installed copy runs examples/python/hello.py."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import SRCDIR, TEMPLATE
import harness

PKG = os.path.join(SRCDIR, "bindings", "python")


def mypy(*files):
    env = dict(os.environ, MYPYPATH=PKG)
    cache = tempfile.mkdtemp(prefix="mypy-")
    try:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--cache-dir", cache,
             "--no-error-summary", "--hide-error-context",
             "--follow-imports=silent"] + list(files),
            capture_output=True, text=True, env=env, cwd=PKG, timeout=600)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def have_mypy():
    return subprocess.run([sys.executable, "-c", "import mypy"],
                          capture_output=True).returncode == 0


def test_generated_module_is_current():
    tmp = tempfile.mkdtemp()
    try:
        os.makedirs(os.path.join(tmp, "lib", "libxcp", "model"))
        shutil.copy(os.path.join(SRCDIR, "lib/libxcp/model/model.def"),
                    os.path.join(tmp, "lib/libxcp/model/"))
        subprocess.run([sys.executable, os.path.join(SRCDIR, "tools", "gen_python.py"),
                        SRCDIR, tmp], check=True)
        rel = "bindings/python/xcp/_model.py"
        with open(os.path.join(SRCDIR, rel)) as a, open(os.path.join(tmp, rel)) as b:
            assert a.read() == b.read(), "stale: %s (run make regen)" % rel
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.skipif(not have_mypy(), reason="mypy not installed (python3-mypy)")
def test_mypy_accepts_package_and_typed_use():
    here = os.path.dirname(os.path.abspath(__file__))
    r = mypy("xcp", os.path.join(here, "typed_usage.py"),
             os.path.join(SRCDIR, "examples", "python", "hello.py"))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not have_mypy(), reason="mypy not installed (python3-mypy)")
def test_mypy_rejects_misuse():
    here = os.path.dirname(os.path.abspath(__file__))
    r = mypy(os.path.join(here, "typed_misuse.py"))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "error:" in ln]
    assert len(lines) == 3, r.stdout


def test_pip_install_offline_and_hello():
    tmp = tempfile.mkdtemp(prefix="xcp-pip-")
    try:
        src = os.path.join(tmp, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        target = os.path.join(tmp, "site")
        r = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-build-isolation",
             "--no-index", "--no-deps", "--target", target, src],
            capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PIP_BREAK_SYSTEM_PACKAGES="1"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.path.exists(os.path.join(target, "xcp", "_model.py"))
        d = harness.Daemon("hello")
        try:
            d.make_vms(["hello-1", "hello-2"])
            hello = os.path.join(tmp, "hello.py")
            shutil.copy(os.path.join(SRCDIR, "examples", "python", "hello.py"), hello)
            r = subprocess.run([sys.executable, hello, d.state],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, PYTHONPATH=target))
            assert r.returncode == 0, r.stderr
            out = r.stdout.splitlines()
            assert len(out) == 2 and out[0].endswith("hello-1"), r.stdout
            assert d.vms["hello-1"] in out[0] and "Halted" in out[0]
            assert TEMPLATE not in r.stdout
        finally:
            d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
