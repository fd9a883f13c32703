"""Italy: FatturaPA, the FPR12 (between private parties) XML that the Sistema di Interscambio
(SdI) accepts, version 1.2.2 of the Agenzia delle Entrate's schema (``data/it/``).

Built from the invoice as the API shows it: every amount is the invoice's own (its minor units
written with two decimals, the exact unit price of a metered line with up to eight), nothing is
rounded again. Where the document goes is the buyer's choice, given at sign-up as the storefront's
``einvoice_fields``:

- a business with an SdI channel: its 7-character ``codice_destinatario``;
- a buyer with a certified mailbox: ``0000000`` and ``PECDestinatario``;
- a consumer: ``0000000`` and the ``codice_fiscale`` (the invoice waits in their fiscal drawer);
- a buyer outside Italy: ``XXXXXXX``.

Lines without Italian VAT carry a ``Natura``: the services Univers sells to a business or a
consumer outside Italy are outside the scope of Italian VAT under articles 7 to 7-septies of DPR
633/72 (``N2.1``; an EU business accounts for the VAT by reverse charge), a domestic reverse charge
is ``N6.9``, VAT paid in another member state through the OSS is ``N7``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

from lxml import etree

from core.billing.einvoice import MISSING_FIELD
from core.context import EInvoiceContext, EInvoiceDocument
from core.errors import InvalidInput

NS = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2"
NO_CODE = "0000000"  # no SdI channel: PEC or the fiscal drawer
ABROAD = "XXXXXXX"  # a buyer without an Italian tax position
FOREIGN_PRIVATE = "99999999999"  # IdCodice of a private buyer abroad (SdI's convention)
# VAT category of a line (EN 16931 codes, as the invoice keeps them) -> Natura when no Italian VAT is due
NATURA = {
    "O": ("N2.1", "Operazione non soggetta, artt. da 7 a 7-septies DPR 633/72"),
    "AE": ("N2.1", "Inversione contabile, art. 7-ter DPR 633/72 e art. 196 Direttiva 2006/112/CE"),
    "AE-domestic": ("N6.9", "Inversione contabile, art. 17 DPR 633/72"),
    "K": ("N3.2", "Cessione intracomunitaria non imponibile, art. 41 DL 331/93"),
    "G": ("N3.1", "Esportazione non imponibile, art. 8 DPR 633/72"),
    "E": ("N4", "Operazione esente, art. 10 DPR 633/72"),
    "OSS": ("N7", "IVA assolta in altro Stato UE (OSS), art. 74-sexies DPR 633/72"),
}
TIPO = {"invoice": "TD01", "credit_note": "TD04"}


_PUNCTUATION = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2018": "'", "\u2019": "'",
                              "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u00a0": " ", "\u202f": " "})


def latin(text: str) -> str:
    """FatturaPA's texts are Latin-1: typographic punctuation becomes its ASCII form, a letter
    outside Latin-1 loses its accent (``Jiří`` -> ``Jiri``), anything else becomes ``?``."""
    out = []
    for ch in text.translate(_PUNCTUATION):
        if ord(ch) < 256:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if ord(c) < 256 and not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


def _two(amount: str) -> str:
    """An amount of the invoice (its currency's two decimals) as FatturaPA writes it."""
    d = Decimal(amount)
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"{amount} has more than two decimals")
    return f"{d:.2f}"


def _price(amount: str) -> str:
    """A unit price: two to eight decimals, as exact as the invoice keeps it."""
    d = Decimal(amount).normalize()
    places = max(2, -d.as_tuple().exponent)
    if places > 8:
        raise ValueError(f"{amount} has more than eight decimals")
    return f"{d:.{places}f}"


def _quantity(line: dict) -> str:
    q = Decimal(line["quantity_exact"] or line["quantity"]).normalize()
    return f"{q:.{max(2, -q.as_tuple().exponent)}f}"


def _rate(rate: str) -> str:
    return f"{Decimal(rate):.2f}"


def natura(category: str, rate: str, seller_country: str, buyer_country: str) -> tuple[str, str] | None:
    """The Natura code and its legal reference of a line, or None when Italian VAT is charged."""
    if category == "S":
        if buyer_country != seller_country and Decimal(rate) != 0:
            return None if buyer_country == "IT" else NATURA["OSS"]
        return None
    if category == "AE" and buyer_country == seller_country:
        return NATURA["AE-domestic"]
    return NATURA[category]


def destination(buyer: dict, details: dict) -> tuple[str, str | None]:
    """(CodiceDestinatario, PECDestinatario) from the buyer's data."""
    if buyer["country"] != "IT":
        return ABROAD, None
    if details.get("codice_destinatario"):
        return details["codice_destinatario"], None
    if details.get("pec"):
        return NO_CODE, details["pec"]
    return NO_CODE, None


def _needed(field: str):
    return InvalidInput(MISSING_FIELD, code="missing_einvoice_field", format="FatturaPA", field=field)


def render(ctx: EInvoiceContext) -> EInvoiceDocument:
    return EInvoiceDocument(build(ctx), "application/xml", filename(ctx))


def filename(ctx: EInvoiceContext) -> str:
    """``IT<seller's VAT number>_<progressive>.xml``, the name SdI expects."""
    vat = ctx.seller["registration_id"]
    return f"IT{vat}_{progressive(ctx.invoice)}.xml"


def progressive(invoice: dict) -> str:
    """The file's progressive: the invoice's id in base 36, five alphanumeric characters."""
    n, digits = invoice["id"], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(5, "0")


def build(ctx: EInvoiceContext) -> bytes:
    inv, seller, buyer, details = ctx.invoice, ctx.seller, ctx.invoice["buyer"], ctx.buyer
    root = etree.Element(f"{{{NS}}}FatturaElettronica", nsmap={"p": NS}, versione="FPR12")

    def sub(parent, tag, text=None):
        el = etree.SubElement(parent, tag)
        if text is not None:
            el.text = latin(str(text))
        return el

    header = sub(root, "FatturaElettronicaHeader")
    transmission = sub(header, "DatiTrasmissione")
    sender = sub(transmission, "IdTrasmittente")
    sub(sender, "IdPaese", seller["country"])
    sub(sender, "IdCodice", seller["registration_id"])
    sub(transmission, "ProgressivoInvio", progressive(inv))
    sub(transmission, "FormatoTrasmissione", "FPR12")
    code, pec = destination(buyer, details)
    sub(transmission, "CodiceDestinatario", code)
    if pec:
        sub(transmission, "PECDestinatario", pec)

    supplier = sub(header, "CedentePrestatore")
    data = sub(supplier, "DatiAnagrafici")
    vat = sub(data, "IdFiscaleIVA")
    sub(vat, "IdPaese", seller["tax_id"][:2])
    sub(vat, "IdCodice", seller["tax_id"][2:])
    sub(sub(data, "Anagrafica"), "Denominazione", seller["name"])
    sub(data, "RegimeFiscale", seller["regime_fiscale"])
    _address(sub(supplier, "Sede"), seller["address"], seller["postcode"], seller["city"], seller.get("province"),
             seller["country"])

    customer = sub(header, "CessionarioCommittente")
    data = sub(customer, "DatiAnagrafici")
    if buyer["tax_id"]:
        vat = sub(data, "IdFiscaleIVA")
        sub(vat, "IdPaese", buyer["tax_id"][:2])
        sub(vat, "IdCodice", buyer["tax_id"][2:])
    elif buyer["country"] != "IT":  # a private buyer abroad: SdI wants an id, the convention is eleven 9s
        vat = sub(data, "IdFiscaleIVA")
        sub(vat, "IdPaese", buyer["country"])
        sub(vat, "IdCodice", FOREIGN_PRIVATE)
    if details.get("codice_fiscale"):
        sub(data, "CodiceFiscale", details["codice_fiscale"])
    elif not buyer["tax_id"] and buyer["country"] == "IT":
        raise _needed("codice_fiscale")
    registry = sub(data, "Anagrafica")
    if details.get("kind") == "person" and not buyer["tax_id"]:
        first, _, last = buyer["name"].rpartition(" ")
        sub(registry, "Nome", first or last)
        sub(registry, "Cognome", last)
    else:
        sub(registry, "Denominazione", buyer["name"])
    if not (details.get("address") and details.get("city")):
        raise _needed("address")
    postcode = details.get("postcode") or ""
    if buyer["country"] == "IT" and not (len(postcode) == 5 and postcode.isdigit()):
        raise _needed("postcode")
    _address(sub(customer, "Sede"), details["address"], postcode if buyer["country"] == "IT" else "00000",
             details["city"], details.get("province") if buyer["country"] == "IT" else None, buyer["country"])

    body = sub(root, "FatturaElettronicaBody")
    general = sub(body, "DatiGenerali")
    document = sub(general, "DatiGeneraliDocumento")
    sub(document, "TipoDocumento", TIPO["credit_note" if inv["kind"] == "credit_note" else "invoice"])
    sub(document, "Divisa", inv["currency"])
    sub(document, "Data", inv["issued_on"])
    sub(document, "Numero", inv["number"])
    sub(document, "ImportoTotaleDocumento", _two(inv["total"]["amount"]))
    if inv.get("reason"):
        sub(document, "Causale", inv["reason"][:200])
    if inv["kind"] == "credit_note" and ctx.credited:
        linked = sub(general, "DatiFattureCollegate")
        sub(linked, "IdDocumento", ctx.credited["number"])
        sub(linked, "Data", ctx.credited["issued_on"])

    goods = sub(body, "DatiBeniServizi")
    for index, line in enumerate(inv["lines"], start=1):
        item = sub(goods, "DettaglioLinee")
        sub(item, "NumeroLinea", index)
        sub(item, "Descrizione", line["description"][:1000])
        sub(item, "Quantita", _quantity(line))
        if line["period_start"]:
            sub(item, "DataInizioPeriodo", line["period_start"])
            sub(item, "DataFinePeriodo", _last_day(line["period_start"], line["period_end"]))
        sub(item, "PrezzoUnitario", _price(line["unit_price_exact"] or line["unit_price"]["amount"]))
        sub(item, "PrezzoTotale", _two(line["net"]["amount"]))
        nature = natura(line["tax_category"], line["tax_rate"], seller["country"], buyer["country"])
        sub(item, "AliquotaIVA", _rate("0" if nature else line["tax_rate"]))
        if nature:
            sub(item, "Natura", nature[0])
    for tax in inv["taxes"]:
        nature = natura(tax["category"], tax["rate"], seller["country"], buyer["country"])
        summary = sub(goods, "DatiRiepilogo")
        sub(summary, "AliquotaIVA", _rate("0" if nature else tax["rate"]))
        if nature:
            sub(summary, "Natura", nature[0])
        sub(summary, "ImponibileImporto", _two(tax["base"]["amount"]))
        sub(summary, "Imposta", _two("0" if nature else tax["tax"]["amount"]))
        if nature:
            sub(summary, "RiferimentoNormativo", nature[1])
        else:
            sub(summary, "EsigibilitaIVA", "I")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _last_day(start: str, end: str) -> str:
    """Periods are kept with an exclusive end; FatturaPA shows the last day served."""
    last = dt.date.fromisoformat(end) - dt.timedelta(days=1)
    return max(dt.date.fromisoformat(start), last).isoformat()


def _address(parent, street: str, postcode: str, city: str, province: str | None, country: str) -> None:
    etree.SubElement(parent, "Indirizzo").text = latin(street)[:60]
    etree.SubElement(parent, "CAP").text = postcode
    etree.SubElement(parent, "Comune").text = latin(city)[:60]
    if province:
        etree.SubElement(parent, "Provincia").text = province
    etree.SubElement(parent, "Nazione").text = country
