"""Spain: the VERI*FACTU registration record of an issued invoice or credit note (Real Decreto
1007/2023, Orden HAC/1177/2024), as the AEAT's ``SuministroInformacion.xsd`` defines it.

``GET /v1/invoices/{id}/national`` returns the document's ``RegistroAlta``: its identification,
type (F1 an invoice to an identified business, F2 a simplified one to a consumer, R1/R5 their
rectifying credit notes, "por diferencias"), the VAT breakdown, the totals, the chaining to the
previous record (or ``PrimerRegistro``), the invoicing system, the generation time and the
``Huella``. The records and their SHA-256 chain are the core's (:mod:`core.billing.chain`): this
module only writes them as XML. :func:`registro` writes a ``RegistroAnulacion`` too.

Validation is offline, with lxml, against the AEAT's schemas vendored in ``data/es`` (see
``data/es/NOTICE.md``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from lxml import etree

from core.context import EInvoiceContext, EInvoiceDocument

SF = "https://www2.agenciatributaria.gob.es/static_files/common/internet/dep/aplicaciones/es/aeat/tike/cont/ws/SuministroInformacion.xsd"
SCHEMA = Path(__file__).parent / "data" / "es" / "SuministroInformacion.xsd"
_NS = {"sf": SF}


def render(ctx: EInvoiceContext) -> EInvoiceDocument | None:
    fiscal = ctx.fiscal
    if not fiscal or not fiscal["records"]:
        return None
    alta = next(r for r in fiscal["records"] if r["kind"] == "alta")
    xml = registro(ctx.invoice, fiscal, alta)
    return EInvoiceDocument(xml, "application/xml", f"{ctx.invoice['number']}-verifactu.xml")


def _amount(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


def _day(iso: str) -> str:
    return dt.date.fromisoformat(iso).strftime("%d-%m-%Y")


def registro(invoice: dict, fiscal: dict, record: dict) -> bytes:
    """The ``RegistroAlta`` or ``RegistroAnulacion`` of one chain record, as bytes (UTF-8)."""
    issuer = fiscal["issuer"]
    alta = record["kind"] == "alta"
    root = etree.Element(f"{{{SF}}}{'RegistroAlta' if alta else 'RegistroAnulacion'}", nsmap={"sf": SF})

    def sub(parent, tag, text=None):
        el = etree.SubElement(parent, f"{{{SF}}}{tag}")
        if text is not None:
            el.text = str(text)
        return el

    sub(root, "IDVersion", "1.0")
    ident = sub(root, "IDFactura")
    suffix = "" if alta else "Anulada"
    sub(ident, f"IDEmisorFactura{suffix}", record["issuer_id"])
    sub(ident, f"NumSerieFactura{suffix}", record["number"])
    sub(ident, f"FechaExpedicionFactura{suffix}", _day(record["issued_on"]))
    if alta:
        _alta_body(sub, root, invoice, fiscal, record, issuer)
    chained = sub(root, "Encadenamiento")
    before = fiscal["previous"].get(str(record["position"])) if "previous" in fiscal else None
    if before is None:
        sub(chained, "PrimerRegistro", "S")
    else:
        prior = sub(chained, "RegistroAnterior")
        sub(prior, "IDEmisorFactura", before["issuer_id"])
        sub(prior, "NumSerieFactura", before["number"])
        sub(prior, "FechaExpedicionFactura", _day(before["issued_on"]))
        sub(prior, "Huella", before["hash"])
    software = fiscal["data"]["software"]
    system = sub(root, "SistemaInformatico")
    sub(system, "NombreRazon", software["developer"])
    sub(system, "NIF", software["developer_nif"])
    sub(system, "NombreSistemaInformatico", software["name"])
    sub(system, "IdSistemaInformatico", software["id"])
    sub(system, "Version", software["version"])
    sub(system, "NumeroInstalacion", software["install"])
    sub(system, "TipoUsoPosibleSoloVerifactu", "S")
    sub(system, "TipoUsoPosibleMultiOT", "N")
    sub(system, "IndicadorMultiplesOT", "N")
    sub(root, "FechaHoraHusoGenRegistro", record["generated_local"])
    sub(root, "TipoHuella", "01")  # SHA-256
    sub(root, "Huella", record["hash"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# VAT categories of the invoice (EN 16931 codes) → the AEAT's qualification of the operation
_SUBJECT = {"S": "S1"}  # subject and not exempt (a cross-border reverse charge is N2: located elsewhere)
_EXEMPT = {"E": "E1", "Z": "E1", "G": "E2", "K": "E5"}  # exempt: art. 20 / exports (art. 21) / intra-EU (art. 25)


def _alta_body(sub, root, invoice: dict, fiscal: dict, record: dict, issuer: dict) -> None:
    credit = record["doc_type"].startswith("R")
    sign = -1 if credit else 1
    sub(root, "NombreRazonEmisor", issuer["name"])
    sub(root, "TipoFactura", record["doc_type"])
    if credit:
        sub(root, "TipoRectificativa", "I")  # por diferencias: the record carries the (negative) difference
        credited = fiscal.get("credited")
        if credited:
            rectified = sub(sub(root, "FacturasRectificadas"), "IDFacturaRectificada")
            sub(rectified, "IDEmisorFactura", credited["issuer_id"])
            sub(rectified, "NumSerieFactura", credited["number"])
            sub(rectified, "FechaExpedicionFactura", _day(credited["issued_on"]))
    description = "; ".join(dict.fromkeys(line["description"] for line in invoice["lines"]))
    sub(root, "DescripcionOperacion", (invoice.get("reason") if credit else None) or description[:500] or invoice["title"])
    buyer = invoice["buyer"]
    if record["doc_type"] in ("F1", "R1") and buyer.get("tax_id"):
        recipient = sub(sub(root, "Destinatarios"), "IDDestinatario")
        sub(recipient, "NombreRazon", buyer["name"][:120])
        tax_id = buyer["tax_id"]
        if tax_id[:2] == "ES":
            sub(recipient, "NIF", tax_id[2:])
        else:  # an EU VAT number: IDOtro of type 02 (NIF-IVA)
            other = sub(recipient, "IDOtro")
            sub(other, "CodigoPais", buyer["country"])
            sub(other, "IDType", "02")
            sub(other, "ID", tax_id)
    breakdown = sub(root, "Desglose")
    for tax in invoice["taxes"]:
        detail = sub(breakdown, "DetalleDesglose")
        sub(detail, "Impuesto", "01")  # IVA
        sub(detail, "ClaveRegimen", "01")  # régimen general
        category = tax["category"]
        base = sign * int(tax["base"]["amount_minor"])
        if category in _EXEMPT:
            sub(detail, "OperacionExenta", _EXEMPT[category])
            sub(detail, "BaseImponibleOimporteNoSujeto", _amount(base))
            continue
        if category not in _SUBJECT:  # outside the scope of Spanish VAT (services located elsewhere)
            sub(detail, "CalificacionOperacion", "N2")
            sub(detail, "BaseImponibleOimporteNoSujeto", _amount(base))
            continue
        sub(detail, "CalificacionOperacion", _SUBJECT[category])
        sub(detail, "TipoImpositivo", f"{Decimal(tax['rate']):.2f}")
        sub(detail, "BaseImponibleOimporteNoSujeto", _amount(base))
        sub(detail, "CuotaRepercutida", _amount(sign * int(tax["tax"]["amount_minor"])))
    sub(root, "CuotaTotal", _amount(record["tax_minor"]))
    sub(root, "ImporteTotal", _amount(record["total_minor"]))


_schema = None


def validate(xml: bytes) -> list[str]:
    """The schema's complaints about a registration record; empty when valid. Offline."""
    global _schema
    if _schema is None:
        parser = etree.XMLParser(no_network=True, resolve_entities=True, load_dtd=False)
        _schema = etree.XMLSchema(etree.parse(str(SCHEMA), parser))
    doc = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))
    if _schema.validate(doc):
        return []
    return [f"{e.line}: {e.message}" for e in _schema.error_log]
