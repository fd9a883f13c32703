"""Poland: the KSeF structured invoice, FA(3) (schema 1-0E of the Ministry of Finance, ``data/pl/``).

In scope: a seller with a Polish VAT registration (its NIP; here the PL storefront's legal entity).
A foreign seller without a Polish establishment or registration is outside KSeF and gets nothing
from this module.

Built from the invoice as the API shows it, amounts as issued (two decimals, the exact unit price
of a metered line with up to eight). Rates go to their P_13_x / P_14_x pair: 23 % and 22 % to
``_1``, 8 % and 7 % to ``_2``, 5 % to ``_3``; the OSS (a consumer in another member state, taxed at
its rate) to ``P_13_5`` with ``P_12_XII``; services to an EU business (reverse charge, art. 100(1)(4))
to ``P_13_9`` as ``np II`` with ``P_18`` = 1; services outside Poland's territory to ``P_13_8`` as
``np I``. A credit note is a ``KOR`` showing the difference (negative amounts) and naming the
corrected invoice (its KSeF number when KSeF accepted it).

The verification link of the invoice ("KOD I", printed as a QR code on the PDF) is
``https://qr.ksef.mf.gov.pl/invoice/<seller's NIP>/<P_1 as DD-MM-YYYY>/<SHA-256 of the XML, base64url>``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from decimal import Decimal

from lxml import etree

from core.context import EInvoiceContext, EInvoiceDocument

NS = "http://crd.gov.pl/wzor/2025/06/25/13775/"
QR_BASE = "https://qr.ksef.mf.gov.pl/invoice"  # production; the test environment is https://qr-test.ksef.mf.gov.pl
EU = {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT", "LT", "LU", "LV",
      "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
BUCKET = {Decimal(23): "1", Decimal(22): "1", Decimal(8): "2", Decimal(7): "2", Decimal(5): "3"}


def nip(seller: dict) -> str:
    tax_id = seller["tax_id"]
    if not tax_id.startswith("PL"):
        raise ValueError("KSeF is for sellers with a Polish VAT registration")
    return tax_id[2:]


def verification_url(xml: bytes, seller_nip: str, issued_on: str) -> str:
    """KSeF's "KOD I" link: seller's NIP, issue date (DD-MM-YYYY), SHA-256 of the file in base64url."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(xml).digest()).rstrip(b"=").decode()
    day = dt.date.fromisoformat(issued_on)
    return f"{QR_BASE}/{seller_nip}/{day:%d-%m-%Y}/{digest}"


def render(ctx: EInvoiceContext) -> EInvoiceDocument:
    xml = build(ctx)
    return EInvoiceDocument(xml, "application/xml", f"{ctx.invoice['number']}-ksef.xml",
                            verification_url(xml, nip(ctx.seller), ctx.invoice["issued_on"]))


def _amount(value: str, sign: int = 1) -> str:
    d = Decimal(value) * sign
    return f"{d:.2f}"


def rate_code(category: str, rate: str, buyer_country: str) -> tuple[str, str]:
    """(P_12 or P_12_XII, the P_13 suffix) of a line or a tax row."""
    r = Decimal(rate)
    if category == "AE":
        return "np II", "9"
    if category == "O":
        return "np I", "8"
    if category == "S" and buyer_country != "PL":
        return f"XII:{r.normalize():f}", "5"  # OSS: a consumer in another member state, at its rate
    if r == 0:
        return "0 KR", "6_1"
    return f"{r.normalize():f}", BUCKET[r]


def build(ctx: EInvoiceContext) -> bytes:
    inv, seller, buyer = ctx.invoice, ctx.seller, ctx.invoice["buyer"]
    credit = inv["kind"] == "credit_note"
    sign = -1 if credit else 1
    root = etree.Element(f"{{{NS}}}Faktura", nsmap={None: NS})

    def sub(parent, tag, text=None, **attrs):
        el = etree.SubElement(parent, f"{{{NS}}}{tag}", **attrs)
        if text is not None:
            el.text = str(text)
        return el

    header = sub(root, "Naglowek")
    sub(header, "KodFormularza", "FA", kodSystemowy="FA (3)", wersjaSchemy="1-0E")
    sub(header, "WariantFormularza", 3)
    sub(header, "DataWytworzeniaFa", f"{inv['issued_on']}T00:00:00Z")
    sub(header, "SystemInfo", "Univers")

    seller_party = sub(root, "Podmiot1")
    ids = sub(seller_party, "DaneIdentyfikacyjne")
    sub(ids, "NIP", nip(seller))
    sub(ids, "Nazwa", seller["name"])
    address = sub(seller_party, "Adres")
    sub(address, "KodKraju", "PL")
    sub(address, "AdresL1", seller["address"])
    sub(address, "AdresL2", f"{seller['postcode']} {seller['city']}")

    buyer_party = sub(root, "Podmiot2")
    ids = sub(buyer_party, "DaneIdentyfikacyjne")
    tax_id, country = buyer["tax_id"], buyer["country"]
    if tax_id and tax_id.startswith("PL"):
        sub(ids, "NIP", tax_id[2:])
    elif tax_id and country in EU:
        sub(ids, "KodUE", tax_id[:2])
        sub(ids, "NrVatUE", tax_id[2:])
    elif tax_id:
        sub(ids, "KodKraju", country)
        sub(ids, "NrID", tax_id)
    else:
        sub(ids, "BrakID", 1)  # a consumer
    sub(ids, "Nazwa", buyer["name"])
    details = ctx.buyer
    if details.get("address"):
        address = sub(buyer_party, "Adres")
        sub(address, "KodKraju", country)
        sub(address, "AdresL1", details["address"])
        if details.get("city"):
            sub(address, "AdresL2", " ".join(filter(None, (details.get("postcode"), details["city"]))))
    sub(buyer_party, "JST", 2)  # not a local government unit
    sub(buyer_party, "GV", 2)  # not a VAT group member

    fa = sub(root, "Fa")
    sub(fa, "KodWaluty", inv["currency"])
    sub(fa, "P_1", inv["issued_on"])
    sub(fa, "P_1M", seller["city"])
    sub(fa, "P_2", inv["number"])
    periods = [(ln["period_start"], ln["period_end"]) for ln in inv["lines"] if ln["period_start"]]
    if periods:
        first = min(p[0] for p in periods)
        last = max(_last_day(*p) for p in periods)
        span = sub(fa, "OkresFa")
        sub(span, "P_6_Od", first)
        sub(span, "P_6_Do", last)
    totals: dict[str, list[Decimal]] = {}
    for tax in inv["taxes"]:
        _, bucket = rate_code(tax["category"], tax["rate"], buyer["country"])
        net, vat = totals.setdefault(bucket, [Decimal(0), Decimal(0)])
        totals[bucket] = [net + Decimal(tax["base"]["amount"]), vat + Decimal(tax["tax"]["amount"])]
    for bucket in ("1", "2", "3", "4", "5"):
        if bucket in totals:
            sub(fa, f"P_13_{bucket}", _amount(str(totals[bucket][0]), sign))
            sub(fa, f"P_14_{bucket}", _amount(str(totals[bucket][1]), sign))
    for bucket in ("6_1", "6_2", "6_3", "7", "8", "9", "10", "11"):
        if bucket in totals:
            sub(fa, f"P_13_{bucket}", _amount(str(totals[bucket][0]), sign))
    sub(fa, "P_15", _amount(inv["total"]["amount"], sign))
    notes = sub(fa, "Adnotacje")
    sub(notes, "P_16", 2)  # not the cash method
    sub(notes, "P_17", 2)  # not self-billed
    sub(notes, "P_18", 1 if "9" in totals else 2)  # reverse charge
    sub(notes, "P_18A", 2)  # no split payment
    sub(sub(notes, "Zwolnienie"), "P_19N", 1)
    sub(sub(notes, "NoweSrodkiTransportu"), "P_22N", 1)
    sub(notes, "P_23", 2)
    sub(sub(notes, "PMarzy"), "P_PMarzyN", 1)
    sub(fa, "RodzajFaktury", "KOR" if credit else "VAT")
    if credit:
        if inv.get("reason"):
            sub(fa, "PrzyczynaKorekty", inv["reason"])
        sub(fa, "TypKorekty", 2)  # effective from the correction's date
        corrected = sub(fa, "DaneFaKorygowanej")
        sub(corrected, "DataWystFaKorygowanej", ctx.credited["issued_on"])
        sub(corrected, "NrFaKorygowanej", ctx.credited["number"])
        if ctx.credited.get("ksef_number"):
            sub(corrected, "NrKSeF", 1)
            sub(corrected, "NrKSeFFaKorygowanej", ctx.credited["ksef_number"])
        else:
            sub(corrected, "NrKSeFN", 1)  # the corrected invoice was issued outside KSeF
    for index, line in enumerate(inv["lines"], start=1):
        row = sub(fa, "FaWiersz")
        sub(row, "NrWierszaFa", index)
        sub(row, "P_7", line["description"][:512])
        quantity = Decimal(line["quantity_exact"] or line["quantity"]) * sign
        sub(row, "P_8B", f"{quantity.normalize():f}")
        sub(row, "P_9A", f"{Decimal(line['unit_price_exact'] or line['unit_price']['amount']).normalize():f}")
        sub(row, "P_11", _amount(line["net"]["amount"], sign))
        code, _ = rate_code(line["tax_category"], line["tax_rate"], buyer["country"])
        if code.startswith("XII:"):
            sub(row, "P_12_XII", code[4:])
        else:
            sub(row, "P_12", code)
    if inv["status"] == "paid" and inv.get("payments"):
        paid = [p for p in inv["payments"] if p["status"] == "succeeded" and p.get("settled_at")]
        if paid:
            payment = sub(fa, "Platnosc")
            sub(payment, "Zaplacono", 1)
            sub(payment, "DataZaplaty", max(p["settled_at"] for p in paid)[:10])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _last_day(start: str, end: str) -> str:
    last = dt.date.fromisoformat(end) - dt.timedelta(days=1)
    return max(dt.date.fromisoformat(start), last).isoformat()
