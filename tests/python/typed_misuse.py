"""Misuse the type checker must catch (test_tooling.py expects errors)."""
import xcp


def wrong(s: xcp.Session, sr: xcp.SRRef) -> None:
    s.VM.start(sr, False, False)           # an SR ref where a VM ref goes
    n: int = s.VM.get_name_label(s.VM.get_all()[0])  # str is not int
    s.VM.set_name_label(s.VM.get_all()[0], 3)        # int is not str
