"""The conformance suite: the contract every universe passes, built-in or shipped by a product unit.

Run it on a universe with one command, in any project where Univers and the universe are
installed::

    pytest --univers-conformance=telecom          # or: univers plugin check telecom

or make it part of the universe's own tests (the scaffold's test file does this)::

    from core.conformance import *  # noqa: F403
    UNIVERSE = "telecom"

Each check runs on SQLite and on PostgreSQL, with a fresh database, the real plugin manager
(the installed entry points) and an injected clock (:mod:`core.testing`). What is checked:

* **catalog**: the universe contributes products, a storefront sells them, and ``univers
  catalog check`` finds nothing wrong with any of its storefronts (prices, currencies, codes,
  support tier levels, translations, templates up to date);
* **lifecycle** of every product, in the first storefront that sells it: ordered (with its
  ``example_options``), provisioned, renewed at its expiry from the prepaid balance,
  suspended, resumed and terminated, each action done by the universe's hook through the
  provisioning outbox;
* **idempotency**: each of its dispatch hooks called a second time with the same idempotency
  key answers "done" again;
* **failures**: a provisioning hook that keeps failing is retried with backoff, then parked
  with its error, and the service is not lost (still pending, its order paid);
* **support tiers**: levels 1–4, one product per level, with a first response time;
* **translations**: every name of its catalog in every language of every storefront selling it.
"""

from __future__ import annotations

import datetime as dt

import pluggy
from sqlalchemy import select

from core.audit import Actor
from core.catalog import price_on
from core.context import ServiceContext
from core.lifecycle.outbox import HOOKS, run_outbox
from core.lifecycle.state import transition
from core.models import AuditEvent, OutboxItem, Service
from core.money import from_minor
from core.renewal.run import run_renewal
from core.uow import unit_of_work

__all__ = [
    "test_conformance_catalog", "test_conformance_lifecycle_of_every_product", "test_conformance_hooks_are_idempotent",
    "test_conformance_provisioning_failures_are_retried_then_parked", "test_conformance_support_tiers",
    "test_conformance_translations",
]

svc, box, events = Service.__table__, OutboxItem.__table__, AuditEvent.__table__
STAFF = Actor.system("conformance")


# --- what the universe sells ---------------------------------------------------------------------


def sold_plans(rt, universe: str) -> list[tuple[str, str]]:
    """(storefront, plan) for each product of the universe that is not a support tier: the
    first storefront selling it (alphabetically) and its first plan on sale there."""
    out = []
    for code, product in sorted(rt.catalog.products.items()):
        if product.universe != universe or product.support_level is not None:
            continue
        for sf, offer in sorted(rt.catalog.offers.items()):
            plan = next((p.code for p in product.plans if p.code in offer.plans), None)
            if code in offer.products and plan is not None:
                out.append((sf, plan))
                break
    return out


def _universe_loaded(rt, universe: str) -> None:
    names = {name for name, _plugin in rt.pm.list_name_plugin()}
    assert universe in names, f"no plugin named {universe!r} is installed (installed: {sorted(names)})"
    assert any(p.universe == universe for p in rt.catalog.products.values()), f"{universe!r} contributes no product"


def _order(shop, storefront: str, plan_code: str) -> tuple[dict, int]:
    """A customer of the storefront with a balance for a few periods, who orders the plan."""
    rt = shop.rt
    plan = rt.catalog.plans[plan_code]
    product = rt.catalog.products[plan.product_code]
    price = price_on(rt.catalog.offers[storefront].prices.get(plan_code, []), rt.clock.today())
    currency = rt.storefronts[storefront].currency
    amount = 0 if price is None else 3 * price.amount_minor + price.setup_minor
    customer = shop.signup(storefront, name=f"Conformance {plan_code}",
                           top_up=str(from_minor(max(amount, 100), currency)))
    order = shop.order(customer, plan_code, options=dict(product.example_options))
    return customer, order["services"][0]["id"]


def _service(rt, service_id: int) -> dict:
    with rt.engine.connect() as conn:
        return dict(conn.execute(select(svc).where(svc.c.id == service_id)).mappings().one())


def _outbox(rt, service_id: int) -> list[tuple[str, str, str | None]]:
    with rt.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(box.c.action, box.c.status, box.c.last_error)
                                              .where(box.c.service_id == service_id).order_by(box.c.id))]


def _move(rt, service_id: int, to_state: str, action: str) -> None:
    with unit_of_work(rt) as conn:
        changed = transition(conn, rt, [service_id], to_state, f"service.{to_state}", STAFF, outbox_action=action)
    assert changed, f"service {service_id} could not move to {to_state}"
    run_outbox(rt)


def _context(rt, service_id: int, key: str) -> ServiceContext:
    s = _service(rt, service_id)
    return ServiceContext(service_id=service_id, universe=s["universe"], product_code=s["product_code"],
                          plan_code=s["plan_code"], product_kind=s["kind"], account_handle="conformance",
                          subsidiary=s["subsidiary"], options=s["options"] or {}, idempotency_key=key,
                          now=rt.clock.now(), settings=rt.settings)


# --- the checks ----------------------------------------------------------------------------------


def test_conformance_catalog(rt, conformance_universe):
    """Its catalog passes ``univers catalog check`` in every storefront, and something is sold."""
    from core.boot import load_catalog
    from core.i18n_tools import stale_templates

    u = conformance_universe
    _universe_loaded(rt, u)
    _catalog, domains, problems = load_catalog(rt.pm, rt.settings, rt.clock, rt.storefronts)
    problems += stale_templates({k: v for k, v in domains.items() if k == u})
    mine = [str(p) for p in problems if p.plugin == u]
    assert mine == [], "\n".join(mine)
    assert sold_plans(rt, u), f"no storefront sells a product of {u!r}"


def test_conformance_lifecycle_of_every_product(shop, rt, clock, conformance_universe):
    """Every product: ordered, provisioned, renewed, suspended, resumed, terminated."""
    u = conformance_universe
    _universe_loaded(rt, u)
    for storefront, plan_code in sold_plans(rt, u):
        what = f"{plan_code} in {storefront}"
        clock.set(dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC))
        customer, service_id = _order(shop, storefront, plan_code)
        run_outbox(rt)
        s = _service(rt, service_id)
        assert s["state"] == "active", f"{what}: not provisioned: {_outbox(rt, service_id)}"
        if s["expires_on"] is not None and rt.catalog.plans[plan_code].months:
            expiry = s["expires_on"]
            clock.set(dt.datetime.combine(expiry - dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC))
            run_renewal(rt)
            renewed = _service(rt, service_id)
            assert renewed["expires_on"] > expiry or (renewed["billed_until"] or expiry) > expiry, \
                f"{what}: not renewed at its expiry {expiry} (state {renewed['state']})"
        for to_state, action in (("suspended", "suspend"), ("active", "resume"), ("terminated", "terminate")):
            _move(rt, service_id, to_state, action)
            assert _service(rt, service_id)["state"] == to_state, what
            last = _outbox(rt, service_id)[-1]
            assert last[:2] == (action, "done"), f"{what}: {action} not done by the universe: {last}"


def test_conformance_hooks_are_idempotent(shop, rt, conformance_universe):
    """Each dispatch hook, called again with the same idempotency key, answers "done" again."""
    u = conformance_universe
    _universe_loaded(rt, u)
    for storefront, plan_code in sold_plans(rt, u):
        _customer, service_id = _order(shop, storefront, plan_code)
        for action in ("provision", "suspend", "resume", "terminate", "restore", "delete"):
            hook = getattr(rt.pm.hook, HOOKS[action])
            ctx = _context(rt, service_id, f"{action}:{service_id}:conformance")
            first, again = hook(ctx=ctx), hook(ctx=ctx)
            assert first is not None, f"{plan_code}: {HOOKS[action]} answered None: no hook of {u!r} handles it"
            assert (first.status, again.status) == ("done", "done"), f"{plan_code}: {HOOKS[action]} twice: {first}, {again}"
            assert again.resource == first.resource, f"{plan_code}: {HOOKS[action]} twice gave two resources"


class _Outage:
    """A plugin registered first that makes the universe's provisioning fail, as a broken
    infrastructure would (the universe's own hook is not called)."""

    def __init__(self, universe: str):
        self.universe = universe

    @pluggy.HookimplMarker("univers")(tryfirst=True)
    def univers_provision(self, ctx):
        if ctx.universe == self.universe:
            raise ConnectionError(f"{self.universe} infrastructure unreachable")
        return None


def test_conformance_provisioning_failures_are_retried_then_parked(shop, rt, clock, conformance_universe):
    """A provisioning that keeps failing is retried with backoff, then parked; nothing is lost."""
    u = conformance_universe
    _universe_loaded(rt, u)
    storefront, plan_code = sold_plans(rt, u)[0]
    _customer, service_id = _order(shop, storefront, plan_code)
    outage = _Outage(u)
    rt.pm.register(outage, name="conformance-outage")
    try:
        for _ in range(rt.settings.outbox_max_attempts + 2):
            run_outbox(rt)
            clock.set(clock.now() + dt.timedelta(hours=2))  # past any backoff
    finally:
        rt.pm.unregister(outage)
    [(action, status, error)] = _outbox(rt, service_id)
    assert (action, status) == ("provision", "parked") and "unreachable" in (error or ""), (action, status, error)
    s = _service(rt, service_id)
    assert s["state"] == "pending", f"the service was lost: {s['state']}"
    with rt.engine.connect() as conn:
        parked = conn.execute(select(events.c.action).where(events.c.entity_id == service_id,
                                                            events.c.action == "outbox.parked")).all()
    assert len(parked) == 1, "no alert (audit event) for the parked item"


def test_conformance_support_tiers(rt, conformance_universe):
    """Its support tiers: levels 1 to 4, one product per level, a first response time, on sale."""
    u = conformance_universe
    _universe_loaded(rt, u)
    tiers = [p for p in rt.catalog.products.values()
             if p.universe == u and p.support_level is not None and not p.partners_only]  # Fast-Path aside
    assert tiers, f"{u!r} contributes no support tier"
    levels = [t.support_level for t in tiers]
    assert all(1 <= level <= 4 for level in levels) and len(set(levels)) == len(levels), levels
    assert all((t.first_response_minutes or 0) > 0 for t in tiers), [t.code for t in tiers]
    assert any(t.code in offer.products for t in tiers for offer in rt.catalog.offers.values()), "no tier is on sale"


def test_conformance_translations(rt, conformance_universe):
    """Every name of its catalog in every language of every storefront that sells it."""
    from core.i18n_tools import translation_problems

    u = conformance_universe
    _universe_loaded(rt, u)
    problems = [str(p) for p in translation_problems(rt.catalog, rt.storefronts, rt.domains) if p.plugin == u]
    assert problems == [], "\n".join(problems)
    assert u in rt.domains, f"{u!r} registers no gettext domain (univers_register_translations)"
