"""The work board as an Atom feed (RFC 4287), built with the standard library's ElementTree: one
entry per incident on the board, its latest update as content, in the reader's language."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from core.i18n import N_, translate
from core.status.board import kind_label, pick, status_label

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TITLE = N_("Work board")
ENTRY_TITLE = N_("{kind} {id}: {title} ({status})")


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def atom(incidents: list[dict], *, base_url: str, self_url: str, company: str, now: dt.datetime, locale: str) -> bytes:
    """The feed: its id is its own address, ``updated`` the latest change (or now when empty)."""
    ET.register_namespace("", ATOM)

    def sub(parent, tag, text=None, **attrs):
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: v for k, v in attrs.items() if v is not None})
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM}}}feed", {XML_LANG: locale.replace("_", "-")})
    sub(feed, "id", self_url)
    sub(feed, "title", f"{company} — {translate(TITLE, locale)}")
    sub(feed, "updated", _stamp(max((i["updated_at"] for i in incidents), default=now)))
    sub(sub(feed, "author"), "name", company)
    sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    sub(feed, "link", rel="alternate", href=f"{base_url}/v1/status", type="application/json")
    for i in incidents:
        url = f"{base_url}/v1/status/{i['id']}"
        entry = sub(feed, "entry")
        sub(entry, "id", url)
        title, _ = pick(i["titles"], locale)
        sub(entry, "title", translate(ENTRY_TITLE, locale).format(
            kind=kind_label(i["kind"], locale), id=i["id"], title=title, status=status_label(i["status"], locale)))
        sub(entry, "updated", _stamp(i["updated_at"]))
        sub(entry, "published", _stamp(i["created_at"]))
        sub(entry, "link", rel="alternate", href=url, type="application/json")
        sub(entry, "category", term=i["universe"])
        for product in i["products"]:
            sub(entry, "category", term=product)
        if i.get("latest"):
            text, language = pick(i["latest"]["texts"], locale)
            sub(entry, "content", text, type="text", **{XML_LANG: language.replace("_", "-")})
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
