"""E-invoices in the EN 16931 syntaxes: UN/CEFACT CII (the XML inside a Factur-X PDF) and
UBL 2.1 (Peppol BIS Billing 3.0), built from an issued invoice or credit note.

Amounts come from the database as they were issued (minor units), written with the currency's
decimals; nothing is recomputed here. Lines keep their single VAT category and rate, which is why
e-invoices are offered for the EU storefronts only: Canada's stacked QST has no place in EN 16931,
and Italy and Poland use national formats instead (:data:`NATIONAL_FORMATS`, rendered by the
``national`` plugin behind ``univers_render_national_einvoice``: FatturaPA FPR12, KSeF FA(3)).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from core.billing.invoicing import number
from core.billing.views import line_description
from core.countries.tax import MENTIONS
from core.i18n import N_, translate
from core.money import from_minor, ppm_to_percent

# raised by a national format's plugin when the buyer's account lacks what the format needs
MISSING_FIELD = N_("The {format} e-invoice needs the buyer's {field}; add it to the account.")
NATIONAL_FORMATS = {"IT": "FatturaPA FPR12 (SdI)", "PL": "KSeF FA(3)"}  # not EN 16931: GET /v1/invoices/{id}/national
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"


class NotAvailable(ValueError):
    """This document has no EN 16931 e-invoice (a storefront outside the EU, a national format)."""


@dataclass
class Document:
    """What an e-invoice says, read once from the database."""

    row: dict
    lines: list[dict]
    taxes: list[dict]
    seller: dict
    locale: str

    @property
    def credit(self) -> bool:
        return self.row["kind"] == "credit_note"

    @property
    def currency(self) -> str:
        return self.row["currency"]

    @property
    def number(self) -> str:
        return number(self.row["series"], self.row["fiscal_year"], self.row["seq"])

    def amount(self, minor: int) -> str:
        return str(from_minor(minor, self.currency))

    def paid(self) -> int:
        return self.row["total_minor"] if self.row["status"] in ("paid",) else 0


def document(rt, row: dict, lines: list[dict], taxes: list[dict], locale: str) -> Document:
    sub = rt.storefronts[row["subsidiary"]]
    if sub.tax_regime != "eu" or sub.code in NATIONAL_FORMATS:
        raise NotAvailable(f"no EN 16931 e-invoice for the {sub.code} storefront"
                           + (f" (its national format: {NATIONAL_FORMATS[sub.code]})" if sub.code in NATIONAL_FORMATS else ""))
    if row["seq"] is None:
        raise NotAvailable("a draft has no e-invoice")
    return Document(row, lines, taxes, sub.legal_entity, locale)


def _last_day(line: dict) -> dt.date:
    """Periods are stored with an exclusive end; documents show the last day served."""
    return max(line["period_start"], line["period_end"] - dt.timedelta(days=1))


def _vat_ids_allowed(doc: Document) -> bool:
    # EN 16931 BR-O-2..4: an invoice "not subject to VAT" carries no VAT identifier.
    return all(t["category"] != "O" for t in doc.taxes)


def exemption(doc: Document, category: str) -> str | None:
    return translate(MENTIONS[category], doc.locale) if category in MENTIONS else None


def _element_maker(ns: dict):
    """``sub(parent, "ram:Name", text, **attributes)``: a child element in a prefixed namespace."""

    def sub(parent, tag, text=None, **attrs):
        prefix, name = tag.split(":")
        el = etree.SubElement(parent, f"{{{ns[prefix]}}}{name}", **attrs)
        if text is not None:
            el.text = str(text)
        return el

    return sub


# --- CII (Factur-X, EN 16931 profile) --------------------------------------------------------------


def cii(rt, doc: Document) -> bytes:
    ns = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=ns)

    sub = _element_maker(ns)

    def date(parent, tag, day: dt.date):
        sub(sub(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")

    context = sub(root, "rsm:ExchangedDocumentContext")
    sub(sub(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", "urn:cen.eu:en16931:2017")
    header = sub(root, "rsm:ExchangedDocument")
    sub(header, "ram:ID", doc.number)
    sub(header, "ram:TypeCode", "381" if doc.credit else "380")
    date(header, "ram:IssueDateTime", doc.row["issued_on"])
    for category in sorted({t["category"] for t in doc.taxes}):
        if text := exemption(doc, category):
            sub(sub(header, "ram:IncludedNote"), "ram:Content", text)
    trade = sub(root, "rsm:SupplyChainTradeTransaction")
    for index, line in enumerate(doc.lines, start=1):
        item = sub(trade, "ram:IncludedSupplyChainTradeLineItem")
        sub(sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", index)
        sub(sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", line_description(rt.catalog, {**line, "currency": doc.row["currency"]}, doc.locale, rt.metrics))
        price = sub(sub(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
        sub(price, "ram:ChargeAmount", doc.amount(line["unit_price_minor"]))
        sub(sub(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", line["quantity"], unitCode="C62")
        settlement = sub(item, "ram:SpecifiedLineTradeSettlement")
        tax = sub(settlement, "ram:ApplicableTradeTax")
        sub(tax, "ram:TypeCode", "VAT")
        sub(tax, "ram:CategoryCode", line["tax_category"])
        if line["tax_category"] != "O":
            sub(tax, "ram:RateApplicablePercent", ppm_to_percent(line["tax_rate_ppm"]))
        period = sub(settlement, "ram:BillingSpecifiedPeriod")
        date(period, "ram:StartDateTime", line["period_start"])
        date(period, "ram:EndDateTime", _last_day(line))
        sub(sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount", doc.amount(line["net_minor"]))
    agreement = sub(trade, "ram:ApplicableHeaderTradeAgreement")
    vat_ids = _vat_ids_allowed(doc)
    seller = sub(agreement, "ram:SellerTradeParty")
    sub(seller, "ram:Name", doc.seller["name"])
    sub(sub(seller, "ram:SpecifiedLegalOrganization"), "ram:ID", doc.seller["registration_id"])
    address = sub(seller, "ram:PostalTradeAddress")
    sub(address, "ram:CityName", doc.seller.get("city", ""))
    sub(address, "ram:CountryID", doc.seller["country"])
    if vat_ids and doc.seller.get("tax_id"):
        sub(sub(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", doc.seller["tax_id"], schemeID="VA")
    buyer = sub(agreement, "ram:BuyerTradeParty")
    sub(buyer, "ram:Name", doc.row["buyer_name"])
    sub(sub(buyer, "ram:PostalTradeAddress"), "ram:CountryID", doc.row["buyer_country"])
    if vat_ids and doc.row["buyer_vat_number"]:
        sub(sub(buyer, "ram:SpecifiedTaxRegistration"), "ram:ID", doc.row["buyer_vat_number"], schemeID="VA")
    sub(trade, "ram:ApplicableHeaderTradeDelivery")
    settlement = sub(trade, "ram:ApplicableHeaderTradeSettlement")
    sub(settlement, "ram:InvoiceCurrencyCode", doc.currency)
    for t in doc.taxes:
        tax = sub(settlement, "ram:ApplicableTradeTax")
        sub(tax, "ram:CalculatedAmount", doc.amount(t["tax_minor"]))
        sub(tax, "ram:TypeCode", "VAT")
        if text := exemption(doc, t["category"]):
            sub(tax, "ram:ExemptionReason", text)
        sub(tax, "ram:BasisAmount", doc.amount(t["base_minor"]))
        sub(tax, "ram:CategoryCode", t["category"])
        if t["category"] != "O":
            sub(tax, "ram:RateApplicablePercent", ppm_to_percent(t["rate_ppm"]))
    if not doc.credit:
        date(sub(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime", doc.row["due_on"])
    totals = sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    sub(totals, "ram:LineTotalAmount", doc.amount(doc.row["net_minor"]))
    sub(totals, "ram:TaxBasisTotalAmount", doc.amount(doc.row["net_minor"]))
    sub(totals, "ram:TaxTotalAmount", doc.amount(doc.row["tax_minor"]), currencyID=doc.currency)
    sub(totals, "ram:GrandTotalAmount", doc.amount(doc.row["total_minor"]))
    sub(totals, "ram:TotalPrepaidAmount", doc.amount(doc.paid()))
    sub(totals, "ram:DuePayableAmount", doc.amount(doc.row["total_minor"] - doc.paid()))
    if doc.credit and doc.row.get("credits"):
        sub(sub(settlement, "ram:InvoiceReferencedDocument"), "ram:IssuerAssignedID", doc.row["credits"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- UBL 2.1 (Peppol BIS Billing 3.0) -----------------------------------------------------------


def ubl(rt, doc: Document) -> bytes:
    main = UBL_CREDIT if doc.credit else UBL_INVOICE
    ns = {None: main, "cac": CAC, "cbc": CBC}
    root = etree.Element(f"{{{main}}}{'CreditNote' if doc.credit else 'Invoice'}", nsmap=ns)

    sub = _element_maker(ns)

    def money(parent, tag, minor):
        return sub(parent, tag, doc.amount(minor), currencyID=doc.currency)

    def category(parent, tag, code, rate_ppm):
        cat = sub(parent, tag)
        sub(cat, "cbc:ID", code)
        if code != "O":
            sub(cat, "cbc:Percent", ppm_to_percent(rate_ppm))
        return cat

    sub(root, "cbc:CustomizationID", PEPPOL_CUSTOMIZATION)
    sub(root, "cbc:ProfileID", PEPPOL_PROFILE)
    sub(root, "cbc:ID", doc.number)
    sub(root, "cbc:IssueDate", doc.row["issued_on"].isoformat())
    if not doc.credit:
        sub(root, "cbc:DueDate", doc.row["due_on"].isoformat())
    sub(root, "cbc:CreditNoteTypeCode" if doc.credit else "cbc:InvoiceTypeCode", "381" if doc.credit else "380")
    for code in sorted({t["category"] for t in doc.taxes}):
        if text := exemption(doc, code):
            sub(root, "cbc:Note", text)
    sub(root, "cbc:DocumentCurrencyCode", doc.currency)
    if doc.credit and doc.row.get("credits"):
        sub(sub(sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference"), "cbc:ID", doc.row["credits"])
    vat_ids = _vat_ids_allowed(doc)
    for role, name, country, vat, city, legal_id in (
        ("cac:AccountingSupplierParty", doc.seller["name"], doc.seller["country"], doc.seller.get("tax_id"),
         doc.seller.get("city"), doc.seller["registration_id"]),
        ("cac:AccountingCustomerParty", doc.row["buyer_name"], doc.row["buyer_country"], doc.row["buyer_vat_number"], None, None),
    ):
        party = sub(sub(root, role), "cac:Party")
        address = sub(party, "cac:PostalAddress")
        if city:
            sub(address, "cbc:CityName", city)
        sub(sub(address, "cac:Country"), "cbc:IdentificationCode", country)
        if vat_ids and vat:
            scheme = sub(party, "cac:PartyTaxScheme")
            sub(scheme, "cbc:CompanyID", vat)
            sub(sub(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
        legal = sub(party, "cac:PartyLegalEntity")
        sub(legal, "cbc:RegistrationName", name)
        if legal_id:
            sub(legal, "cbc:CompanyID", legal_id)
    total = sub(root, "cac:TaxTotal")
    money(total, "cbc:TaxAmount", doc.row["tax_minor"])
    for t in doc.taxes:
        subtotal = sub(total, "cac:TaxSubtotal")
        money(subtotal, "cbc:TaxableAmount", t["base_minor"])
        money(subtotal, "cbc:TaxAmount", t["tax_minor"])
        cat = category(subtotal, "cac:TaxCategory", t["category"], t["rate_ppm"])
        if text := exemption(doc, t["category"]):
            sub(cat, "cbc:TaxExemptionReason", text)
        sub(sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")
    sums = sub(root, "cac:LegalMonetaryTotal")
    money(sums, "cbc:LineExtensionAmount", doc.row["net_minor"])
    money(sums, "cbc:TaxExclusiveAmount", doc.row["net_minor"])
    money(sums, "cbc:TaxInclusiveAmount", doc.row["total_minor"])
    money(sums, "cbc:PrepaidAmount", doc.paid())
    money(sums, "cbc:PayableAmount", doc.row["total_minor"] - doc.paid())
    for index, line in enumerate(doc.lines, start=1):
        item_line = sub(root, "cac:CreditNoteLine" if doc.credit else "cac:InvoiceLine")
        sub(item_line, "cbc:ID", index)
        sub(item_line, "cbc:CreditedQuantity" if doc.credit else "cbc:InvoicedQuantity", line["quantity"], unitCode="C62")
        money(item_line, "cbc:LineExtensionAmount", line["net_minor"])
        period = sub(item_line, "cac:InvoicePeriod")
        sub(period, "cbc:StartDate", line["period_start"].isoformat())
        sub(period, "cbc:EndDate", _last_day(line).isoformat())
        item = sub(item_line, "cac:Item")
        sub(item, "cbc:Name", line_description(rt.catalog, {**line, "currency": doc.row["currency"]}, doc.locale, rt.metrics))
        cat = category(item, "cac:ClassifiedTaxCategory", line["tax_category"], line["tax_rate_ppm"])
        sub(sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")
        money(sub(item_line, "cac:Price"), "cbc:PriceAmount", line["unit_price_minor"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def ubl_flavor(doc: Document) -> str:
    return "ubl-2.1-creditnote" if doc.credit else "ubl-2.1-invoice"

