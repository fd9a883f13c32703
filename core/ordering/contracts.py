"""Contracts: versioned terms, served in the customer's language, accepted with each order.

A contract *document* is a storefront's general terms (``general``) or a universe's specific
terms there (the universe's name). Each *version* is one text in one language, in force from
its ``effective_on`` date, and known by the SHA-256 of its text (``content_hash``): that is
what a customer accepts. Texts are data, Markdown files with a small header::

    ---
    title: General terms of sale
    requires_acceptance: true
    ---
    1. Who we are. {company}, …

* the general terms are in ``core/data/contracts/<STOREFRONT>/<YYYY-MM-DD>.<lang>.md``, and
  ``core/data/contracts/_all/`` for every storefront without its own (``{company}`` is then the
  storefront's legal entity);
* a universe's terms come from its plugin (``univers_register_contracts``; a
  :class:`core.universe.Universe` reads ``catalog/contracts/`` the same way), for the
  storefronts that sell it.

At start-up (:func:`sync`) every version is written to ``contract_version`` once. A version in
force is never rewritten: a changed text for a date already reached stops start-up (publish a
new version with a later date instead). A future version may still be corrected.

**At order** (:func:`required`, :func:`accept_for_order`): the checkout needs the general terms
and the terms of each universe of the order, the versions in force today, in the customer's
language (else the storefront's, else English). The order names their hashes in ``accept``; an
older version of a document is refused (``contract_outdated``), a missing one too
(``contract_acceptance_required``, with the list). The acceptance is recorded with the account,
the version, the time, the channel (the customer's API key, or staff on its behalf) and the
order, and written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import String, and_, case, cast, insert, literal, or_, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.catalog import Problem
from core.context import ContractText
from core.db import insert_ignore
from core.errors import Conflict, InvalidInput, NotFound
from core.i18n import N_
from core.models import ContractAcceptance, ContractVersion

versions, acceptances = ContractVersion.__table__, ContractAcceptance.__table__
DATA = Path(__file__).parents[1] / "data" / "contracts"
GENERAL = "general"
ALL = "_all"
_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([a-z]{2,3}(?:_[A-Z]{2})?)\.md$")


def read_texts(root: Path, document: str) -> tuple[list[ContractText], list[Problem]]:
    """The versions under ``root/<STOREFRONT or _all>/<date>.<lang>.md``."""
    texts, problems = [], []
    for path in sorted(root.glob("*/*.md")):
        match = _FILE.match(path.name)

        def problem(message: str) -> None:
            problems.append(Problem(document, "bad_contract_file", message, path.parent.name, str(path)))  # noqa: B023

        if not match:
            problem("a contract file is named <YYYY-MM-DD>.<language>.md")
            continue
        raw = path.read_text(encoding="utf-8")
        head, _, body = raw.partition("\n---\n") if raw.startswith("---\n") else ("", "", raw)
        fields = dict(line.split(":", 1) for line in head.splitlines()[1:] if ":" in line)
        title = fields.get("title", "").strip()
        if not title or not body.strip():
            problem("a contract file starts with a header giving its title (--- title: … ---), then its text")
            continue
        try:
            effective = dt.date.fromisoformat(match.group(1))
        except ValueError:
            problem(f"{match.group(1)} is not a date")
            continue
        texts.append(ContractText(document, path.parent.name, match.group(2), effective, title, body.strip() + "\n",
                                  fields.get("requires_acceptance", "true").strip().lower() != "false", str(path)))
    return texts, problems


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(text: ContractText) -> str:
    """What a customer accepts: the SHA-256 of the title and the text, as served."""
    return digest(f"{text.title}\n\n{text.body}")


def expand(texts: list[ContractText], storefronts: dict, sold: dict[str, set[str]]) -> list[ContractText]:
    """Every version for every storefront it applies to: ``_all`` texts for the storefronts
    (selling the universe, for a universe's terms) without a text of their own for that date."""
    own = {(t.document, t.storefront, t.language, t.effective_on) for t in texts if t.storefront != ALL}
    out = []
    for t in texts:
        targets = [t.storefront] if t.storefront != ALL else sorted(storefronts)
        for sf in targets:
            if sf not in storefronts or (t.document != GENERAL and sf not in sold.get(t.document, set())):
                continue
            if t.storefront == ALL and (t.document, sf, t.language, t.effective_on) in own:
                continue
            company = storefronts[sf].legal_entity["name"]
            out.append(ContractText(t.document, sf, t.language, t.effective_on, t.title.replace("{company}", company),
                                    t.body.replace("{company}", company), t.requires_acceptance, t.source))
    return out


def sync(conn: Connection, versions_in_files: list[ContractText], today: dt.date, now: dt.datetime) -> list[Problem]:
    """Write new versions; refuse a text changed for a date already in force."""
    if not versions_in_files:
        return []
    known = {(r.document, r.storefront, r.language, r.effective_on): (r.id, r.content_hash)
             for r in conn.execute(select(versions.c.id, versions.c.document, versions.c.storefront, versions.c.language,
                                          versions.c.effective_on, versions.c.content_hash))}
    new, problems = [], []
    for v in versions_in_files:
        key = (v.document, v.storefront, v.language, v.effective_on)
        row = dict(document=v.document, storefront=v.storefront, language=v.language, effective_on=v.effective_on,
                   title=v.title, body=v.body, content_hash=content_hash(v), requires_acceptance=v.requires_acceptance,
                   created_at=now)
        if key not in known:
            new.append(row)
        elif known[key][1] != row["content_hash"]:
            if v.effective_on <= today:
                problems.append(Problem(v.document, "contract_rewritten",
                                        f"the {v.language} text in force since {v.effective_on} was changed: publish a new "
                                        "version with a later date instead", v.storefront, v.source))
            else:
                conn.execute(update(versions).where(versions.c.id == known[key][0]).values(
                    title=v.title, body=v.body, content_hash=row["content_hash"], requires_acceptance=v.requires_acceptance))
    if new:
        conn.execute(insert_ignore(conn, versions), new)
    return problems


def _language(code: str | None) -> str:
    return (code or "").replace("-", "_").split("_", 1)[0].lower()


def in_force(conn: Connection, rt, storefront: str, documents: list[str], language: str | None, day: dt.date) -> list[dict]:
    """The version in force on ``day`` of each document that has one in the storefront, in the
    reader's language, else the storefront's, else English, else any."""
    rows = [dict(r) for r in conn.execute(select(versions).where(
        versions.c.storefront == storefront, versions.c.document.in_(documents), versions.c.effective_on <= day)
        .order_by(versions.c.document, versions.c.effective_on.desc())).mappings()]
    wanted = [_language(language), _language(rt.storefronts[storefront].default_locale), "en"]
    out = []
    for document in documents:
        mine = [r for r in rows if r["document"] == document]
        if not mine:
            continue
        latest = mine[0]["effective_on"]
        current = [r for r in mine if r["effective_on"] == latest]
        out.append(next((r for lang in wanted for r in current if _language(r["language"]) == lang), current[0]))
    return out


def documents_for(universes: set[str]) -> list[str]:
    return [GENERAL, *sorted(universes)]


def required(conn: Connection, rt, storefront: str, universes: set[str], language: str | None) -> list[dict]:
    """The versions an order of these universes in this storefront must accept, today."""
    return in_force(conn, rt, storefront, documents_for(universes), language, rt.clock.today())


def check_accepted(conn: Connection, needed: list[dict], accepted: list[str]) -> None:
    """Refuse an order whose ``accept`` misses a needed version or names an older one."""
    given = set(accepted)
    named = conn.execute(select(versions.c.document, versions.c.storefront, versions.c.effective_on).where(
        versions.c.content_hash.in_(list(given)))).all() if given else []
    missing = [v for v in needed if v["content_hash"] not in given  # the text in another language is the same version
               and (v["document"], v["storefront"], v["effective_on"]) not in set(named)]
    if not missing:
        return
    outdated = {doc for doc, _sf, _day in named if any(v["document"] == doc for v in missing)}
    errors = [{"field": "accept", "code": "contract_outdated" if v["document"] in outdated else "contract_not_accepted",
               "params": {"document": v["document"], "hash": v["content_hash"]},
               "message": N_("Accept version {hash} of the terms {document}.")} for v in missing]
    if outdated:
        raise Conflict(N_("The order accepts an out-of-date version of the terms; accept the version in force."),
                       code="contract_outdated", errors=errors)
    raise InvalidInput(N_("The order must accept the terms in force: list their versions in accept."),
                       code="contract_acceptance_required", errors=errors)


def record(conn: Connection, rt, account_id: int, needed: list[dict], actor: Actor, *, order_id: int | None = None,
           service_id: int | None = None) -> None:
    """Record the acceptance of these versions by the account, and log it."""
    if not needed:
        return
    now = rt.clock.now()
    channel = "staff" if actor.is_staff and not actor.is_system else ("import" if actor.is_system else "api")
    conn.execute(insert(acceptances), [dict(account_id=account_id, version_id=v["id"], content_hash=v["content_hash"],
                                            accepted_at=now, channel=channel, actor=actor.label, order_id=order_id,
                                            service_id=service_id) for v in needed])
    audit.record_many(conn, now, actor, "account", "contract.accepted", [
        (account_id, None, {"document": v["document"], "language": v["language"], "effective_on": v["effective_on"].isoformat(),
                            "content_hash": v["content_hash"], "channel": channel, "order_id": order_id,
                            "service_id": service_id}) for v in needed])


def get_version(conn: Connection, version_id: int) -> dict:
    row = conn.execute(select(versions).where(versions.c.id == version_id)).mappings().first()
    if row is None:
        raise NotFound(what="contract")
    return dict(row)


def accepted_by(conn: Connection, account_id: int) -> list[dict]:
    """The account's acceptances, oldest first, with the version they name."""
    return [dict(r) for r in conn.execute(
        select(acceptances, versions.c.document, versions.c.storefront, versions.c.language, versions.c.effective_on,
               versions.c.title, versions.c.requires_acceptance)
        .join(versions, versions.c.id == acceptances.c.version_id)
        .where(and_(acceptances.c.account_id == account_id)).order_by(acceptances.c.id)).mappings()]


# --- new terms for services already running ------------------------------------------------------

LIVE = ("active", "suspended")


def _accepted(account, document, storefront, effective_on):
    """An acceptance by ``account`` of the version (document, storefront, date), in any language."""
    v2 = versions.alias("accepted_version")
    return (select(acceptances.c.id).join(v2, v2.c.id == acceptances.c.version_id)
            .where(acceptances.c.account_id == account, v2.c.document == document, v2.c.storefront == storefront,
                   v2.c.effective_on == effective_on).exists())


def apply_new_terms(conn: Connection, rt, today: dt.date) -> int:
    """When a new version requiring acceptance comes into force, give each live service under
    older terms a deadline: its next renewal date (``terms_due_by``; staff may move it). Its
    billing and admin contacts are told. Without acceptance by then, the service is not renewed
    and ends at expiry (core/renewal/run.py, core/renewal/dunning.py), and the forecast shows it stopping.
    The first version of a document is not news: services under the legacy terms are switched
    by a campaign (:func:`invite`). Each version is applied once (``applied_at``)."""
    from core.models import Service

    svc = Service.__table__
    now = rt.clock.now()
    due = conn.execute(select(versions.c.document, versions.c.storefront, versions.c.effective_on).where(
        versions.c.requires_acceptance.is_(True), versions.c.effective_on <= today, versions.c.applied_at.is_(None))
        .distinct()).all()
    marked = 0
    for document, storefront, effective_on in due:
        older = conn.execute(select(versions.c.id).where(versions.c.document == document, versions.c.storefront == storefront,
                                                         versions.c.effective_on < effective_on).limit(1)).first()
        if older is not None:
            deadline = case((svc.c.billed_until > svc.c.expires_on, svc.c.billed_until), else_=svc.c.expires_on)
            scope = and_(svc.c.subsidiary == storefront, svc.c.state.in_(LIVE), svc.c.terms_due_by.is_(None),
                         svc.c.renewal_mode != "terminate", *([] if document == GENERAL else [svc.c.universe == document]),
                         ~_accepted(svc.c.account_id, document, storefront, effective_on))
            ids = list(conn.execute(update(svc).where(scope).values(terms_due_by=deadline, updated_at=now)
                                    .returning(svc.c.id)).scalars())
            marked += len(ids)
            _tell(conn, rt, ids, "terms_changed", f"{document}:{effective_on}")
            audit.record_many(conn, now, Actor.system("contracts"), "service", "service.terms_due",
                              [(i, None, {"document": document, "effective_on": effective_on.isoformat()}) for i in ids])
        conn.execute(update(versions).where(versions.c.document == document, versions.c.storefront == storefront,
                                            versions.c.effective_on == effective_on).values(applied_at=now))
    return marked


def _tell(conn: Connection, rt, ids: list[int], kind: str, suffix: str) -> None:
    """Notification ``kind`` to the billing and the admin contact of each service (once when they
    are one account), keyed by service, ``suffix`` and role."""
    from core.models import Service
    from core.notices import queue

    svc = Service.__table__
    for start in range(0, len(ids), 1000):
        part = ids[start:start + 1000]
        for role in ("billing", "admin"):
            column = svc.c[f"{role}_account_id"]
            queue(conn, rt, kind, select(
                cast(svc.c.id, String) + literal(f":{suffix}:{role}"), column, svc.c.id, literal(None, svc.c.id.type))
                .where(svc.c.id.in_(part), *([column != svc.c.billing_account_id] if role == "admin" else [])))


def terms_of(conn: Connection, rt, service: dict, language: str | None = None) -> list[tuple[dict, bool]]:
    """The versions in force a service needs (general terms, its universe's), each with whether
    its holder accepted that version (in any language)."""
    needed = in_force(conn, rt, service["subsidiary"], documents_for({service["universe"]}), language, rt.clock.today())
    return [(v, bool(conn.execute(select(_accepted(service["account_id"], v["document"], v["storefront"],
                                                    v["effective_on"]))).scalar())) for v in needed]


def accept_for_services(conn: Connection, rt, actor: Actor, service_ids: list[int], accepted: list[str]) -> list[int]:
    """Accept the terms in force for these services (one, or all of an account's): the versions
    named must be those each service needs; their holders' acceptances are recorded, and every
    service whose terms are all accepted is cleared of its deadline (a legacy service waiting in
    manual renewal is switched to automatic: the campaign's purpose). Returns the cleared ids."""
    from core.models import Service

    svc = Service.__table__
    rows = [dict(r) for r in conn.execute(select(svc).where(svc.c.id.in_(service_ids))).mappings()]
    now = rt.clock.now()
    cleared = []
    for row in rows:
        fresh = [v for v, done in terms_of(conn, rt, row) if not done]
        if fresh:
            check_accepted(conn, fresh, accepted)
            record(conn, rt, row["account_id"], [next(x for x in _same_version(conn, v) if x["content_hash"] in accepted)
                                                 for v in fresh], actor, service_id=row["id"])
        values = {"terms_due_by": None, "updated_at": now}
        if row["legacy_ref"] and row["renewal_mode"] == "manual":
            values["renewal_mode"] = "automatic"
        if row["terms_due_by"] is not None or "renewal_mode" in values:
            conn.execute(update(svc).where(svc.c.id == row["id"]).values(**values))
            audit.record(conn, now, actor, "service", row["id"], "service.terms_accepted",
                         {"terms_due_by": row["terms_due_by"], "renewal_mode": row["renewal_mode"]},
                         {"terms_due_by": None, "renewal_mode": values.get("renewal_mode", row["renewal_mode"])})
            cleared.append(row["id"])
    return cleared


def accept_all(conn: Connection, rt, actor: Actor, account_id: int, accepted: list[str]) -> list[int]:
    """Accept the terms in force for every live service the account holds that waits for them."""
    from core.models import Service

    svc = Service.__table__
    ids = list(conn.execute(select(svc.c.id).where(svc.c.account_id == account_id, svc.c.terms_due_by.is_not(None),
                                                   svc.c.state.in_(LIVE))).scalars())
    return accept_for_services(conn, rt, actor, ids, accepted)


def move_deadline(conn: Connection, rt, actor: Actor, service_id: int, due_by: dt.date) -> None:
    """Staff: move the date by which a service must accept new terms (it renews until then)."""
    from core.models import Service

    svc = Service.__table__
    before = conn.execute(select(svc.c.terms_due_by).where(svc.c.id == service_id)).first()
    if before is None or before.terms_due_by is None:
        raise InvalidInput(N_("This service is not waiting for new terms."), code="no_terms_pending")
    conn.execute(update(svc).where(svc.c.id == service_id).values(terms_due_by=due_by, updated_at=rt.clock.now()))
    audit.record(conn, rt.clock.now(), actor, "service", service_id, "service.terms_deadline",
                 {"terms_due_by": before.terms_due_by}, {"terms_due_by": due_by})


def _same_version(conn: Connection, v: dict) -> list[dict]:
    """The texts of a version in every language (accepting any of them accepts the version)."""
    return [dict(r) for r in conn.execute(select(versions).where(
        versions.c.document == v["document"], versions.c.storefront == v["storefront"],
        versions.c.effective_on == v["effective_on"])).mappings()]


# --- the switch campaign of legacy services -------------------------------------------------------


@dataclass
class Campaign:
    invited: int = 0  # legacy services given a deadline and an invitation (this run)
    waiting: int = 0  # invited, not accepted yet, deadline ahead
    accepted: int = 0  # switched to automatic renewal on the new contract
    declined: int = 0  # the customer stopped the service instead
    ending: int = 0  # deadline reached without acceptance: ends (or ended) at expiry


def _legacy_scope(storefront: str, universe: str | None, plan_prefix: str | None, expiring_within: int | None, today: dt.date,
                  rt=None):
    from core.models import Service

    if rt is not None and storefront not in rt.storefronts:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)

    svc = Service.__table__
    where = [svc.c.legacy_ref.is_not(None), svc.c.subsidiary == storefront]
    if universe:
        where.append(svc.c.universe == universe)
    if plan_prefix:
        where.append(svc.c.plan_code.startswith(plan_prefix, autoescape=True))
    if expiring_within is not None:
        where.append(svc.c.expires_on <= today + dt.timedelta(days=expiring_within))
    return svc, and_(*where)


def invite(conn: Connection, rt, storefront: str, *, universe: str | None = None, plan_prefix: str | None = None,
           expiring_within: int | None = None) -> Campaign:
    """Invite the chosen legacy services (imported in manual renewal, core/portability/legacy.py) to renew
    onto the new contract: each gets its expiry as deadline and an invitation to its billing and
    admin contacts. Accepting (:func:`accept_for_services`) switches it to automatic renewal;
    without acceptance it ends at expiry. Running it again invites nobody twice."""
    today, now = rt.clock.today(), rt.clock.now()
    svc, scope = _legacy_scope(storefront, universe, plan_prefix, expiring_within, today, rt)
    ids = list(conn.execute(update(svc).where(scope, svc.c.state.in_(LIVE), svc.c.renewal_mode == "manual",
                                              svc.c.terms_due_by.is_(None))
                            .values(terms_due_by=svc.c.expires_on, updated_at=now).returning(svc.c.id)).scalars())
    _tell(conn, rt, ids, "switch_invitation", "legacy")
    audit.record_many(conn, now, Actor.system("switch-campaign"), "service", "service.switch_invited",
                      [(i, None, {"terms_due_by": "expires_on"}) for i in ids])
    report = progress(conn, rt, storefront, universe=universe, plan_prefix=plan_prefix, expiring_within=expiring_within)
    report.invited = len(ids)
    return report


def progress(conn: Connection, rt, storefront: str, *, universe: str | None = None, plan_prefix: str | None = None,
             expiring_within: int | None = None) -> Campaign:
    """Where the campaign stands for the chosen legacy services."""
    from sqlalchemy import func

    today = rt.clock.today()
    svc, scope = _legacy_scope(storefront, universe, plan_prefix, expiring_within, today, rt)
    status = case(
        (svc.c.renewal_mode == "terminate", "declined"),
        (and_(svc.c.terms_due_by.is_(None), svc.c.renewal_mode == "automatic"), "accepted"),
        (and_(svc.c.terms_due_by.is_not(None), or_(svc.c.state.in_(("terminated", "deleted")),
                                                   svc.c.terms_due_by <= today)), "ending"),
        (svc.c.terms_due_by.is_not(None), "waiting"),
        else_="not_invited")
    out = Campaign()
    for name, count in conn.execute(select(status, func.count()).where(scope).group_by(status)):
        if hasattr(out, name):
            setattr(out, name, count)
    return out
