"""The work board: staff publish incidents and known bugs per universe and product, post their
updates in several languages and resolve them; anyone reads the board without a key.

An incident names its universe, the products it touches (none: all of the universe's) and the
storefronts (none: all). Each step is an update (status and texts), written with an audit event
and, in the same transaction, a mail to each subscriber (:mod:`core.status.subscriptions`).
Texts written by staff are data, kept per language; a reader gets its language, else English.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.db import insert_ignore
from core.errors import InvalidInput, InvalidState, NotFound, one_line
from core.i18n import N_, fallback_chain, normalise, translate
from core.models import Incident, IncidentUpdate
from core.runtime import Runtime
from core.status.scope import check_scope
from core.status.subscriptions import queue_update_mails

inc = Incident.__table__
upd = IncidentUpdate.__table__

# labels read through Babel in the reader's language (the texts of staff are data)
STATUSES = {"investigating": N_("Investigating"), "identified": N_("Identified"), "fixing": N_("Fixing"),
            "resolved": N_("Resolved")}
KINDS = {"incident": N_("Incident"), "known_bug": N_("Known bug")}
OPEN = ("investigating", "identified", "fixing")


def status_label(status: str, locale: str | None) -> str:
    label = STATUSES[status]  # a variable: the extractor takes a literal argument of translate() for a msgid
    return translate(label, locale)


def kind_label(kind: str, locale: str | None) -> str:
    label = KINDS[kind]
    return translate(label, locale)

RECENT = dt.timedelta(days=7)  # how long a resolved incident stays on the board
MAX_TITLE, MAX_TEXT, MAX_LANGUAGES = 200, 5000, 40
BOARD_LIMIT = 200  # the board's incidents at most, most recent first


# --- input ---------------------------------------------------------------------------------------


def clean_texts(texts: Mapping[str, str], limit: int, *, field: str | None = None) -> dict[str, str]:
    """Texts by language (``fr``, ``fr-CA``...), English among them, each 1 to ``limit`` characters;
    with ``field``, each on one line (a title: it is a mail's subject)."""
    out = {}
    for language, text in texts.items():
        code = normalise(language) if len(language) <= 16 else None
        if code is None:
            raise InvalidInput(N_("Unknown language {language}."), code="unknown_language", language=language[:16])
        text = (text or "").strip()
        if not 1 <= len(text) <= limit:
            raise InvalidInput(N_("Give each text in English at least, 1 to {max} characters each."), code="invalid_texts",
                               max=limit)
        out[code] = one_line(text, f"{field}.{language}") if field else text
    if "en" not in out or len(out) > MAX_LANGUAGES:
        raise InvalidInput(N_("Give each text in English at least, 1 to {max} characters each."), code="invalid_texts",
                           max=limit)
    return out


def pick(texts: Mapping[str, str], locale: str | None) -> tuple[str, str]:
    """The text in the reader's language (``fr_CA``, then ``fr``), else English: (text, language)."""
    for language in [*fallback_chain(locale), "en"]:
        if language in texts:
            return texts[language], language
    language = sorted(texts)[0]
    return texts[language], language


# --- staff ---------------------------------------------------------------------------------------


def _incident(conn: Connection, incident_id: int, *, for_update: bool = False) -> dict:
    q = select(inc).where(inc.c.id == incident_id)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().one_or_none()
    if row is None:
        raise NotFound(what="incident")
    return dict(row)


def create_incident(conn: Connection, rt: Runtime, actor: Actor, *, universe: str, kind: str, titles: Mapping[str, str],
                    texts: Mapping[str, str], products: Iterable[str] = (), storefronts: Iterable[str] = (),
                    status: str = "investigating", key: str | None = None) -> tuple[dict, bool]:
    """Open an incident with its first update. With ``key``, a retry returns the incident the
    first call opened (and False: nothing new)."""
    if key is not None:
        found = conn.execute(select(inc.c.id).where(inc.c.idempotency_key == key)).scalar_one_or_none()
        if found is not None:
            return _incident(conn, found), False
    products, storefronts = check_scope(rt, universe, products, storefronts)
    if kind not in KINDS:
        raise InvalidInput(code="invalid_kind")
    if status not in OPEN:
        raise InvalidInput(code="invalid_status")
    titles, texts = clean_texts(titles, MAX_TITLE, field="title"), clean_texts(texts, MAX_TEXT)
    now = rt.clock.now()
    values = dict(universe=universe, products=products, storefronts=storefronts, kind=kind, status=status, titles=titles,
                  idempotency_key=key, created_by=actor.account_id, created_at=now, updated_at=now, resolved_at=None)
    if key is not None:  # a concurrent retry: the unique key lets one in
        if not conn.execute(insert_ignore(conn, inc).values(**values)).rowcount:
            return create_incident(conn, rt, actor, universe=universe, kind=kind, titles=titles, texts=texts, key=key)
        incident_id = conn.execute(select(inc.c.id).where(inc.c.idempotency_key == key)).scalar_one()
    else:
        incident_id = conn.execute(inc.insert().values(**values)).inserted_primary_key[0]
    update_id = conn.execute(upd.insert().values(incident_id=incident_id, at=now, status=status, texts=texts,
                                                 author_id=actor.account_id)).inserted_primary_key[0]
    row = _incident(conn, incident_id)
    audit.record(conn, now, actor, "status_incident", incident_id, "status.opened", None,
                 {"universe": universe, "products": products, "storefronts": storefronts, "kind": kind, "status": status,
                  "update_id": update_id})
    _tell(conn, rt, row, update_id)
    return row, True


def post_update(conn: Connection, rt: Runtime, actor: Actor, incident_id: int, status: str, texts: Mapping[str, str],
                key: str | None = None) -> tuple[dict, bool]:
    """A new step of an open incident; ``resolved`` closes it. With ``key``, a retry posts
    nothing more (and returns False)."""
    row = _incident(conn, incident_id, for_update=True)
    if key is not None and conn.execute(select(upd.c.id).where(upd.c.incident_id == incident_id,
                                                               upd.c.idempotency_key == key)).first():
        return row, False
    if row["status"] == "resolved":
        raise InvalidState(what="incident", state="resolved")
    if status not in STATUSES:
        raise InvalidInput(code="invalid_status")
    texts = clean_texts(texts, MAX_TEXT)
    now = rt.clock.now()
    values = dict(incident_id=incident_id, at=now, status=status, texts=texts, idempotency_key=key, author_id=actor.account_id)
    if key is not None:
        if not conn.execute(insert_ignore(conn, upd).values(**values)).rowcount:
            return _incident(conn, incident_id), False
        update_id = conn.execute(select(upd.c.id).where(upd.c.incident_id == incident_id,
                                                        upd.c.idempotency_key == key)).scalar_one()
    else:
        update_id = conn.execute(upd.insert().values(**values)).inserted_primary_key[0]
    conn.execute(update(inc).where(inc.c.id == incident_id).values(
        status=status, updated_at=now, resolved_at=now if status == "resolved" else None))
    audit.record(conn, now, actor, "status_incident", incident_id, "status.resolved" if status == "resolved" else "status.updated",
                 {"status": row["status"]}, {"status": status, "update_id": update_id})
    row = _incident(conn, incident_id)
    _tell(conn, rt, row, update_id)
    return row, True


def resolve(conn: Connection, rt: Runtime, actor: Actor, incident_id: int, texts: Mapping[str, str],
            key: str | None = None) -> tuple[dict, bool]:
    return post_update(conn, rt, actor, incident_id, "resolved", texts, key)


def _tell(conn: Connection, rt: Runtime, incident: dict, update_id: int) -> None:
    queue_update_mails(conn, rt, incident, update_id)


# --- reading -------------------------------------------------------------------------------------


def applies(incident: Mapping, universe: str, product: str | None, storefront: str | None) -> bool:
    """Does the incident touch this universe, product and storefront (none listed: all)?"""
    return (incident["universe"] == universe
            and (not incident["products"] or product is None or product in incident["products"])
            and (not incident["storefronts"] or storefront is None or storefront in incident["storefronts"]))


def board(conn: Connection, rt: Runtime, universe: str | None = None, storefront: str | None = None,
          product: str | None = None) -> list[dict]:
    """The open incidents and those resolved in the last days, most recently changed first, each
    with its latest update (``latest``). Two queries."""
    since = rt.clock.now() - RECENT
    q = select(inc).where(or_(inc.c.resolved_at.is_(None), inc.c.resolved_at >= since))
    if universe:
        q = q.where(inc.c.universe == universe)
    rows = [dict(r) for r in conn.execute(q.order_by(inc.c.updated_at.desc(), inc.c.id.desc()).limit(BOARD_LIMIT)).mappings()]
    storefront = storefront.upper() if storefront else None
    rows = [r for r in rows if applies(r, r["universe"], product, storefront)]
    latest = _latest_updates(conn, [r["id"] for r in rows])
    return [{**r, "latest": latest.get(r["id"])} for r in rows]


def _latest_updates(conn: Connection, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    last = select(func.max(upd.c.id)).where(upd.c.incident_id.in_(ids)).group_by(upd.c.incident_id)
    return {r["incident_id"]: dict(r) for r in conn.execute(select(upd).where(upd.c.id.in_(last))).mappings()}


def incident(conn: Connection, incident_id: int) -> dict:
    """One incident with all its updates (``updates``, oldest first)."""
    row = _incident(conn, incident_id)
    row["updates"] = [dict(r) for r in conn.execute(select(upd).where(upd.c.incident_id == incident_id).order_by(upd.c.id)).mappings()]
    return row


def open_for_services(conn: Connection, services: list[Mapping]) -> dict[int, list[dict]]:
    """The open incidents touching each service of a page (its universe, product and
    storefront): one query for the whole page, never one per service."""
    universes_ = sorted({s["universe"] for s in services})
    if not universes_:
        return {}
    rows = [dict(r) for r in conn.execute(
        select(inc.c.id, inc.c.universe, inc.c.products, inc.c.storefronts, inc.c.kind, inc.c.status, inc.c.titles)
        .where(inc.c.universe.in_(universes_), inc.c.resolved_at.is_(None)).order_by(inc.c.id)).mappings()]
    return {s["id"]: [r for r in rows if applies(r, s["universe"], s["product_code"], s["subsidiary"])] for s in services}
