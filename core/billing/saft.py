"""SAF-T (PT) 1.04_01: the audit file a Portuguese issuer hands the Autoridade Tributária, built
from the same invoice model as every other document, with the fiscal chain's ATCUD, hash and hash
control of each document (:mod:`core.billing.chain`).

:func:`audit_file` writes the file from documents already read (each the invoice as the API shows
it, with its fiscal context): :func:`export` for a period of a storefront (``univers fiscal saft``),
and the Portuguese national format (``plugins/national/pt.py``) for a single document. The file
holds the header (issuer, period, software), the master files (customers, products, tax table) and
the sales invoices (FT invoices, NC credit notes, each line with its tax). A consumer without a tax
number is the final consumer ``999999990``; an address Univers does not know is ``Desconhecido``,
as the AT's rules allow.

:func:`validate` checks a file against the official XSD (vendored in ``core/data/fiscal``,
XSD 1.1 with its assertions, checked by ``xmlschema``), offline.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from pathlib import Path

from lxml import etree

NS = "urn:OECD:StandardAuditFile-Tax:PT_1.04_01"
XSD = Path(__file__).parents[1] / "data" / "fiscal" / "SAFTPT1.04_01.xsd"
UNKNOWN = "Desconhecido"
FINAL_CONSUMER = "999999990"
# Portuguese VAT rates (mainland) → SAF-T tax codes
_CODES = {Decimal("23"): "NOR", Decimal("13"): "INT", Decimal("6"): "RED"}
# a line without Portuguese VAT: services to a business established elsewhere (CIVA art. 6(6)(a))
_NOT_TAXED = ("M40", "Artigo 6.º n.º 6 alínea a) do CIVA, a contrário")
_EXEMPT = ("M99", "Não sujeito ou não tributado")


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


def _tax(line: dict, buyer_country: str) -> tuple[str, str, Decimal]:
    """(region, code, percentage) of a line, as SAF-T writes its VAT."""
    rate = Decimal(line["tax_rate"])
    if line["tax_category"] != "S" or rate == 0:
        return "PT", "ISE", Decimal(0)
    if rate in _CODES:
        return "PT", _CODES[rate], rate
    return buyer_country or "PT", "NOR", rate  # OSS: the consumer's country's rate


def audit_file(issuer: dict, fiscal_data: dict, start: dt.date, end: dt.date, created: dt.date,
               documents: list[tuple[dict, dict]]) -> bytes:
    """The audit file of ``documents``: (invoice as the API shows it, its fiscal context) pairs,
    in chain order."""
    root = etree.Element(f"{{{NS}}}AuditFile", nsmap={None: NS})

    def sub(parent, tag, text=None):
        el = etree.SubElement(parent, f"{{{NS}}}{tag}")
        if text is not None:
            el.text = str(text)
        return el

    address = fiscal_data.get("address", {})
    header = sub(root, "Header")
    for tag, value in (("AuditFileVersion", "1.04_01"), ("CompanyID", issuer["national_id"]),
                       ("TaxRegistrationNumber", issuer["national_id"]), ("TaxAccountingBasis", "F"),
                       ("CompanyName", issuer["name"])):
        sub(header, tag, value)
    company = sub(header, "CompanyAddress")
    sub(company, "AddressDetail", address.get("detail", UNKNOWN))
    sub(company, "City", address.get("city", issuer.get("city", UNKNOWN)))
    sub(company, "PostalCode", address.get("postal_code", UNKNOWN))
    sub(company, "Country", "PT")
    for tag, value in (("FiscalYear", start.year), ("StartDate", start.isoformat()), ("EndDate", end.isoformat()),
                       ("CurrencyCode", "EUR"), ("DateCreated", created.isoformat()), ("TaxEntity", "Global"),
                       ("ProductCompanyTaxID", fiscal_data.get("producer_tax_id", issuer["national_id"])),
                       ("SoftwareCertificateNumber", int(fiscal_data.get("software_certificate", 0))),
                       ("ProductID", fiscal_data.get("product_id", "Univers/Univers")),
                       ("ProductVersion", fiscal_data.get("product_version", "1.0"))):
        sub(header, tag, value)

    masters = sub(root, "MasterFiles")
    customers: dict[str, dict] = {}
    products: dict[str, str] = {}
    taxes: dict[tuple[str, str, Decimal], None] = {}
    for invoice, fiscal in documents:
        customers.setdefault(_customer_id(invoice, fiscal), invoice["buyer"])
        for line in invoice["lines"]:
            products.setdefault(_product(line), line["description"])
            taxes.setdefault(_tax(line, invoice["buyer"]["country"]), None)
    for customer_id, buyer in customers.items():
        c = sub(masters, "Customer")
        sub(c, "CustomerID", customer_id)
        sub(c, "AccountID", UNKNOWN)
        sub(c, "CustomerTaxID", _tax_id(buyer))
        sub(c, "CompanyName", buyer["name"][:100] if buyer.get("tax_id") else "Consumidor final")
        billing = sub(c, "BillingAddress")
        sub(billing, "AddressDetail", UNKNOWN)
        sub(billing, "City", buyer.get("city") or UNKNOWN)
        sub(billing, "PostalCode", UNKNOWN)
        sub(billing, "Country", buyer["country"] or UNKNOWN)
        sub(c, "SelfBillingIndicator", 0)
    for code, description in products.items():
        p = sub(masters, "Product")
        sub(p, "ProductType", "S")  # services
        sub(p, "ProductCode", code)
        sub(p, "ProductDescription", description[:200])
        sub(p, "ProductNumberCode", code)
    if taxes:
        table = sub(masters, "TaxTable")
        for region, code, rate in taxes:
            entry = sub(table, "TaxTableEntry")
            sub(entry, "TaxType", "IVA")
            sub(entry, "TaxCountryRegion", region)
            sub(entry, "TaxCode", code)
            sub(entry, "Description", {"NOR": "Taxa normal", "INT": "Taxa intermédia", "RED": "Taxa reduzida"}.get(code, "Isenta"))
            sub(entry, "TaxPercentage", _money(rate))

    source = sub(root, "SourceDocuments")
    sales = sub(source, "SalesInvoices")
    credit_total = sum(Decimal(i["net"]["amount"]) for i, _ in documents if i["kind"] != "credit_note")
    debit_total = sum(Decimal(i["net"]["amount"]) for i, _ in documents if i["kind"] == "credit_note")
    sub(sales, "NumberOfEntries", len(documents))
    sub(sales, "TotalDebit", _money(debit_total))
    sub(sales, "TotalCredit", _money(credit_total))
    for invoice, fiscal in documents:
        _invoice(sub, sales, invoice, fiscal)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _customer_id(invoice: dict, fiscal: dict) -> str:
    return str(fiscal.get("account_id") or _tax_id(invoice["buyer"]))


def _tax_id(buyer: dict) -> str:
    tax_id = buyer.get("tax_id") or ""
    if not tax_id:
        return FINAL_CONSUMER
    return tax_id[2:] if tax_id[:2] == "PT" else tax_id


def _product(line: dict) -> str:
    """A plan's recurring price, its setup fee and its usage are three products."""
    return f"{line['plan']}.{line['kind']}"[:60] if line.get("plan") else line["kind"][:60]


def _invoice(sub, sales, invoice: dict, fiscal: dict) -> None:
    record = next(r for r in fiscal["records"] if r["kind"] == "alta")
    entry = dt.datetime.fromisoformat(record["generated_local"]).strftime("%Y-%m-%dT%H:%M:%S")
    credit = record["doc_type"] == "NC"
    doc = sub(sales, "Invoice")
    sub(doc, "InvoiceNo", record["number"])
    sub(doc, "ATCUD", fiscal["atcud"])
    status = sub(doc, "DocumentStatus")
    sub(status, "InvoiceStatus", "N")
    sub(status, "InvoiceStatusDate", entry)
    sub(status, "SourceID", "univers")
    sub(status, "SourceBilling", "P")  # produced by this software
    sub(doc, "Hash", record["hash"])
    sub(doc, "HashControl", fiscal["data"].get("key_version", "1"))
    sub(doc, "Period", dt.date.fromisoformat(record["issued_on"]).month)
    sub(doc, "InvoiceDate", record["issued_on"])
    sub(doc, "InvoiceType", record["doc_type"])
    regimes = sub(doc, "SpecialRegimes")
    for tag in ("SelfBillingIndicator", "CashVATSchemeIndicator", "ThirdPartiesBillingIndicator"):
        sub(regimes, tag, 0)
    sub(doc, "SourceID", "univers")
    sub(doc, "SystemEntryDate", entry)
    sub(doc, "CustomerID", _customer_id(invoice, fiscal))
    credited = fiscal.get("credited")
    for number, line in enumerate(invoice["lines"], start=1):
        quantity, unit = Decimal(line["quantity"]), Decimal(line["unit_price"]["amount"])
        net = Decimal(line["net"]["amount"])
        if quantity * unit != net:  # a usage line or a partial credit: one unit of the amount
            quantity, unit = Decimal(1), net
        ln = sub(doc, "Line")
        sub(ln, "LineNumber", number)
        sub(ln, "ProductCode", _product(line))
        sub(ln, "ProductDescription", line["description"][:200])
        sub(ln, "Quantity", quantity)
        sub(ln, "UnitOfMeasure", "UN")
        sub(ln, "UnitPrice", _money(unit))
        sub(ln, "TaxPointDate", record["issued_on"])
        if credit and credited:
            ref = sub(ln, "References")
            sub(ref, "Reference", credited["number"])
            sub(ref, "Reason", (invoice.get("reason") or "")[:50] or "Nota de crédito")
        sub(ln, "Description", line["description"][:200])
        sub(ln, "DebitAmount" if credit else "CreditAmount", _money(net))
        region, code, rate = _tax(line, invoice["buyer"]["country"])
        tax = sub(ln, "Tax")
        sub(tax, "TaxType", "IVA")
        sub(tax, "TaxCountryRegion", region)
        sub(tax, "TaxCode", code)
        sub(tax, "TaxPercentage", _money(rate))
        if code == "ISE":
            reason_code, reason = _NOT_TAXED if line["tax_category"] in ("AE", "K", "O") else _EXEMPT
            sub(ln, "TaxExemptionReason", reason)
            sub(ln, "TaxExemptionCode", reason_code)
    totals = sub(doc, "DocumentTotals")
    sub(totals, "TaxPayable", _money(invoice["tax"]["amount"]))
    sub(totals, "NetTotal", _money(invoice["net"]["amount"]))
    sub(totals, "GrossTotal", _money(invoice["total"]["amount"]))


@functools.lru_cache(maxsize=1)
def _schema():
    import xmlschema

    return xmlschema.XMLSchema11(str(XSD))


def validate(xml: bytes) -> list[str]:
    """The official schema's complaints about an audit file; empty when valid. Offline."""
    return [f"{e.path}: {e.reason}" for e in _schema().iter_errors(xml.decode("utf-8"))]


def export(conn, rt, storefront: str, start: dt.date, end: dt.date) -> bytes:
    """The audit file of the documents a storefront issued from ``start`` to ``end`` (inclusive),
    in chain order (series, then number); read a page of invoices at a time."""
    import msgspec
    from sqlalchemy import select

    from core.billing import chain, invoicing
    from core.billing.views import invoice_read
    from core.models import Account, FiscalRecord, Invoice

    inv, rec, acct = Invoice.__table__, FiscalRecord.__table__, Account.__table__
    sub = rt.storefronts[storefront]
    ids = conn.execute(
        select(inv.c.id).join(rec, (rec.c.invoice_id == inv.c.id) & (rec.c.kind == "alta"))
        .where(inv.c.subsidiary == storefront, inv.c.issued_on >= start, inv.c.issued_on <= end)
        .order_by(rec.c.chain, rec.c.position)).scalars().all()
    documents = []
    for page in range(0, len(ids), 500):
        chunk = ids[page:page + 500]
        rows = {r["id"]: r for r in conn.execute(select(inv).where(inv.c.id.in_(chunk))).mappings()}
        languages = dict(conn.execute(select(acct.c.id, acct.c.language)
                                      .where(acct.c.id.in_({r["account_id"] for r in rows.values()}))).all())
        for row, lines, taxes, payments in invoicing.load_invoices(conn, [rows[i] for i in chunk]):
            view = msgspec.to_builtins(invoice_read(rt, row, lines, taxes, payments, languages[row["account_id"]]))
            documents.append((view, chain.context(conn, rt, row)))
    issuer = {"national_id": chain.national_id(sub), **sub.legal_entity}
    return audit_file(issuer, sub.fiscal, start, end, rt.clock.today(), documents)
