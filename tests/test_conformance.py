"""The four built-in universes pass the conformance suite (core/conformance.py) on both engines."""

from __future__ import annotations

import inspect

import pluggy
import pytest

from core.conformance import *  # noqa: F403
from core.context import ActionResult


@pytest.fixture(params=["web", "baremetal", "publiccloud", "enterprise"])
def conformance_universe(request) -> str:
    return request.param


# --- and the suite fails a universe that breaks the contract ----------------------------------------

class _Broken:
    """Registered first, it answers for the web universe as a broken implementation would."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls = 0

    @pluggy.HookimplMarker("univers")(tryfirst=True)
    def univers_suspend(self, ctx):
        return self.answers.get("suspend") if ctx.universe == "web" else None

    @pluggy.HookimplMarker("univers")(tryfirst=True)
    def univers_provision(self, ctx):
        if ctx.universe != "web" or "provision" not in self.answers:
            return None
        self.calls += 1
        return ActionResult("done", resource=f"web-{ctx.service_id}-{self.calls}")  # a new resource each call


@pytest.mark.parametrize(("answers", "check", "says"), [
    ({"suspend": ActionResult("retry", detail="not implemented")}, test_conformance_lifecycle_of_every_product,  # noqa: F405
     "suspend not done"),
    ({"provision": True}, test_conformance_hooks_are_idempotent, "gave two resources"),  # noqa: F405
])
def test_the_suite_fails_a_universe_that_breaks_the_contract(shop, rt, clock, answers, check, says):
    rt.pm.register(_Broken(**answers), name="broken-web")
    args = {"shop": shop, "rt": rt, "clock": clock, "conformance_universe": "web"}
    with pytest.raises(AssertionError, match=says):
        check(**{name: args[name] for name in inspect.signature(check).parameters})
