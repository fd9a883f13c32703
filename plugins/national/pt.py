"""Portugal: the document as the Autoridade Tributária audits it, a SAF-T (PT) 1.04_01 audit
file holding this one invoice or credit note (``GET /v1/invoices/{id}/national``).

Why this and not a bare ATCUD/hash record: an auditor of a Portuguese issuer checks a document
in the SAF-T, the file the AT receives; this one is exactly the document's part of the period's
file (``univers fiscal saft``), with its customer, products and tax table, so it validates against
the official XSD alone and carries what the auditor verifies: the ATCUD, the ``Hash`` (RSA-SHA1
signature of ``InvoiceDate;SystemEntryDate;InvoiceNo;GrossTotal;previous hash``), its
``HashControl`` (key version) and the totals it was signed with. The previous document's hash, to
check the link, is in the period's file, or in the chain (``core/billing/chain.py``).

The records, signatures and the file itself are the core's (:mod:`core.billing.chain`,
:mod:`core.billing.saft`): this module picks the document and its period.
"""

from __future__ import annotations

import datetime as dt

from core.billing import saft
from core.context import EInvoiceContext, EInvoiceDocument


def render(ctx: EInvoiceContext) -> EInvoiceDocument | None:
    fiscal = ctx.fiscal
    if not fiscal or not fiscal["records"]:
        return None
    record = next(r for r in fiscal["records"] if r["kind"] == "alta")
    day = dt.date.fromisoformat(record["issued_on"])
    created = dt.datetime.fromisoformat(record["generated_local"]).date()
    xml = saft.audit_file(fiscal["issuer"], fiscal["data"], day, day, created, [(ctx.invoice, fiscal)])
    return EInvoiceDocument(xml, "application/xml", f"{ctx.invoice['number']}-saft-pt.xml")
