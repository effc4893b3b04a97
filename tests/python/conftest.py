"""pytest setup for the Python binding's suite (tests/python): the binding
from the source tree, libxcp.so from the build tree, the sim hypervisor,
and the server tests' harness (xcpd on a fresh state dir, xe to make VMs)."""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("abs_top_srcdir") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("abs_top_builddir") or SRCDIR
os.environ.setdefault("abs_top_builddir", BUILDDIR)
os.environ.setdefault("XCP_LIBRARY", os.path.join(
    BUILDDIR, "lib", "libxcp", ".libs", "libxcp.so.0"))
sys.path.insert(0, os.path.join(SRCDIR, "bindings", "python"))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "server"))

import harness  # noqa: E402  (sets the sim environment defaults)

TEMPLATE = harness.TEMPLATE


@pytest.fixture
def state_dir():
    d = tempfile.mkdtemp(prefix="xcp-py-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon():
    """xcpd with VMs vm-a and vm-b, for the remote half of the tests."""
    d = harness.Daemon("python")
    try:
        d.make_vms(["vm-a", "vm-b"])
        d.start()
        yield d
    finally:
        d.cleanup()
