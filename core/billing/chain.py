"""Fiscal chains: Portugal's and Spain's tamper-evident registers of issued documents.

A storefront whose data names a ``fiscal_chain`` (``pt`` or ``es``, ``core/data/subsidiaries.json``)
gets one :class:`~core.models.FiscalRecord` per document it issues, invoice or credit note, in the
transaction that numbers it (:func:`core.billing.invoicing.issue` calls :func:`append`). A record
holds the fields its country's rule hashes, the previous record's hash and its own, so that changing
any record, or removing one, breaks every hash after it. A credit note is a new record, never an edit
of the invoice's; a Spanish annulment (:func:`annul`) is one more record too. The database refuses any
UPDATE or DELETE of a record (migration 0020), as it does for issued invoices.

One chain per issuer and series (``chain``): the series itself in Spain, the series of one year in
Portugal, whose ATCUD codes are given per series and year. Records are appended under the row lock
of the numbering counter, so that 8 workers issuing at once keep each chain gapless and linked; the
hashes of a batch are computed in Python over the rows just numbered (ordered by number) and
written in one INSERT.

* **es**: the *huella* of a VERI*FACTU registration record (Orden HAC/1177/2024 and the AEAT's
  "Detalle de las especificaciones técnicas para generación de la huella o hash de los registros
  de facturación"): the upper-case hex SHA-256 of
  ``IDEmisorFactura=…&NumSerieFactura=…&FechaExpedicionFactura=dd-mm-yyyy&TipoFactura=…&CuotaTotal=…
  &ImporteTotal=…&Huella=<previous>&FechaHoraHusoGenRegistro=<local time with offset>`` (an
  annulment: ``IDEmisorFacturaAnulada=…&NumSerieFacturaAnulada=…&FechaExpedicionFacturaAnulada=…
  &Huella=…&FechaHoraHusoGenRegistro=…``).
* **pt**: the signature of Portaria 363/2010 (Despacho 8632/2014): RSA-SHA1 (PKCS#1 v1.5, a 1024-bit
  key) of ``InvoiceDate;SystemEntryDate;InvoiceNo;GrossTotal;<previous hash>``, in Base64. The key
  is the software producer's, registered with the AT; ``UNIVERS_PT_SIGNING_KEY`` names its PEM file,
  and without it the TEST key vendored in ``core/data/fiscal`` (generated for the tests, certified by
  nobody) signs. Verification needs only the public key.

:func:`verify` recomputes a chain end to end and compares it with the invoices it records.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from core.billing.numbers import number
from core.errors import Conflict, NotFound
from core.i18n import N_
from core.models import FiscalRecord, Invoice, InvoiceCounter

rec = FiscalRecord.__table__
inv = Invoice.__table__
counter = InvoiceCounter.__table__
TEST_KEY = Path(__file__).parents[1] / "data" / "fiscal" / "pt-test-key.pem"
CHUNK = 10_000  # records read at once by verify


def amount(minor: int) -> str:
    """``12.35``, ``-12.35``: two decimals, a point, as both schemes write an amount in euros."""
    return f"{Decimal(minor).scaleb(-2):.2f}"


def local_time(sub, at: dt.datetime) -> dt.datetime:
    """The moment in the issuer's time zone, to the second (both schemes write it so)."""
    return at.astimezone(ZoneInfo(sub.fiscal.get("timezone", "UTC"))).replace(microsecond=0)


def national_id(sub) -> str:
    """The issuer's tax number without its VAT country prefix (``ESA12345674`` → ``A12345674``)."""
    tax_id = sub.legal_entity["tax_id"]
    return tax_id[2:] if tax_id[:2] == sub.country else tax_id


class Spain:
    code = "es"

    @staticmethod
    def chain(series: str, year: int) -> str:
        return series

    @staticmethod
    def fields(sub, row) -> dict:
        credit = row.kind == "credit_note"
        business = bool(row.buyer_vat_number)
        sign = -1 if credit else 1  # a rectifying invoice "por diferencias" carries the (negative) difference
        return {"issuer_id": national_id(sub), "number": number(row.series, row.fiscal_year, row.seq),
                "doc_type": ("R1" if business else "R5") if credit else ("F1" if business else "F2"),
                "tax_minor": sign * row.tax_minor, "total_minor": sign * row.total_minor}

    @staticmethod
    def canonical(sub, r: dict) -> str:
        at = local_time(sub, r["generated_at"]).isoformat()
        day = r["issued_on"].strftime("%d-%m-%Y")
        if r["kind"] == "anulacion":
            return (f"IDEmisorFacturaAnulada={r['issuer_id']}&NumSerieFacturaAnulada={r['number']}"
                    f"&FechaExpedicionFacturaAnulada={day}&Huella={r['prev_hash']}&FechaHoraHusoGenRegistro={at}")
        return (f"IDEmisorFactura={r['issuer_id']}&NumSerieFactura={r['number']}&FechaExpedicionFactura={day}"
                f"&TipoFactura={r['doc_type']}&CuotaTotal={amount(r['tax_minor'])}&ImporteTotal={amount(r['total_minor'])}"
                f"&Huella={r['prev_hash']}&FechaHoraHusoGenRegistro={at}")

    @staticmethod
    def sign(settings, text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest().upper()

    @classmethod
    def check(cls, settings, text: str, value: str) -> bool:
        return cls.sign(settings, text) == value


class Portugal:
    code = "pt"

    @staticmethod
    def chain(series: str, year: int) -> str:
        return f"{series}{year}"

    @staticmethod
    def fields(sub, row) -> dict:
        doc_type = "NC" if row.kind == "credit_note" else "FT"
        return {"issuer_id": national_id(sub), "doc_type": doc_type,
                "number": f"{doc_type} {row.series}{row.fiscal_year}/{row.seq}",
                "tax_minor": row.tax_minor, "total_minor": row.total_minor}

    @staticmethod
    def canonical(sub, r: dict) -> str:
        entry = local_time(sub, r["generated_at"]).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{r['issued_on']:%Y-%m-%d};{entry};{r['number']};{amount(r['total_minor'])};{r['prev_hash']}"

    @staticmethod
    def sign(settings, text: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        key = _private_key(settings.pt_signing_key or str(TEST_KEY))
        return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())).decode("ascii")

    @staticmethod
    def check(settings, text: str, value: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        public = _private_key(settings.pt_signing_key or str(TEST_KEY)).public_key()
        try:
            public.verify(base64.b64decode(value), text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())
        except (InvalidSignature, ValueError):
            return False
        return True


SCHEMES = {"es": Spain, "pt": Portugal}


@functools.lru_cache(maxsize=4)
def _private_key(path: str):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(Path(path).read_bytes(), password=None)


def scheme_of(rt, subsidiary: str):
    sub = rt.storefronts.get(subsidiary)
    return sub, (SCHEMES.get(sub.fiscal_chain) if sub is not None and sub.fiscal_chain else None)


def _head(conn: Connection, subsidiary: str, chain: str) -> tuple[int, str]:
    found = conn.execute(select(rec.c.position, rec.c.hash).where(rec.c.subsidiary == subsidiary, rec.c.chain == chain)
                         .order_by(rec.c.position.desc()).limit(1)).first()
    return (found.position, found.hash) if found else (0, "")


def append(conn: Connection, rt, subsidiary: str, series: str, year: int, first: int, last: int) -> int:
    """Record the documents numbered ``first``..``last`` of a series, in number order. Called by
    :func:`core.billing.invoicing.issue` while it holds the series' counter lock."""
    sub, scheme = scheme_of(rt, subsidiary)
    if scheme is None or last < first:
        return 0
    rows = conn.execute(
        select(inv.c.id, inv.c.kind, inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.issued_on, inv.c.tax_minor,
               inv.c.total_minor, inv.c.buyer_vat_number)
        .where(inv.c.subsidiary == subsidiary, inv.c.series == series, inv.c.fiscal_year == year, inv.c.seq.between(first, last))
        .order_by(inv.c.seq)
    ).all()
    chain = scheme.chain(series, year)
    position, prev = _head(conn, subsidiary, chain)
    now = rt.clock.now().replace(microsecond=0)
    out = []
    for row in rows:
        position += 1
        r = {"subsidiary": subsidiary, "chain": chain, "position": position, "scheme": scheme.code, "kind": "alta",
             "invoice_id": row.id, "issued_on": row.issued_on, "generated_at": now, "prev_hash": prev, **scheme.fields(sub, row)}
        r["hash"] = prev = scheme.sign(rt.settings, scheme.canonical(sub, r))
        out.append(r)
    if out:
        conn.execute(insert(rec), out)
    return len(out)


def annul(conn: Connection, rt, invoice_id: int) -> dict:
    """Spain's *registro de anulación*: the registration record of an invoice that should never have
    been issued is annulled by one more record in the chain (the invoice itself stays, as every issued
    document does; its amounts are corrected by a credit note). Idempotent: annulling twice returns the
    first annulment."""
    row = conn.execute(select(inv).where(inv.c.id == invoice_id)).first()
    if row is None or row.seq is None:
        raise NotFound(N_("No such {what}."), what="invoice")
    sub, scheme = scheme_of(rt, row.subsidiary)
    if scheme is not Spain:
        raise Conflict(N_("Only a registration record of a Spanish invoice can be annulled."), code="not_annullable")
    key = and_(counter.c.subsidiary == row.subsidiary, counter.c.series == row.series, counter.c.fiscal_year == row.fiscal_year)
    conn.execute(select(counter.c.last_seq).where(key).with_for_update()).scalar_one()  # the chain's lock, as issue takes it
    done = conn.execute(select(rec).where(rec.c.invoice_id == invoice_id, rec.c.kind == "anulacion")).mappings().first()
    if done is not None:
        return dict(done)
    alta = conn.execute(select(rec).where(rec.c.invoice_id == invoice_id, rec.c.kind == "alta")).mappings().one()
    position, prev = _head(conn, row.subsidiary, alta["chain"])
    r = {**{k: alta[k] for k in ("subsidiary", "chain", "scheme", "invoice_id", "issuer_id", "doc_type", "number",
                                 "issued_on", "tax_minor", "total_minor")},
         "position": position + 1, "kind": "anulacion", "generated_at": rt.clock.now().replace(microsecond=0), "prev_hash": prev}
    r["hash"] = scheme.sign(rt.settings, scheme.canonical(sub, r))
    conn.execute(insert(rec).values(**r))
    return r


def records(conn: Connection, invoice_id: int) -> list[dict]:
    """The records of one document (its registration, then an annulment if any)."""
    return [dict(r) for r in conn.execute(select(rec).where(rec.c.invoice_id == invoice_id).order_by(rec.c.position)).mappings()]


def previous(conn: Connection, record: dict) -> dict | None:
    """The record before this one in its chain (None for the first)."""
    found = conn.execute(select(rec).where(rec.c.subsidiary == record["subsidiary"], rec.c.chain == record["chain"],
                                           rec.c.position == record["position"] - 1)).mappings().first()
    return dict(found) if found else None


@dataclass
class Verification:
    subsidiary: str
    chain: str
    records: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (position, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems


def chains(conn: Connection, subsidiary: str | None = None) -> list[tuple[str, str]]:
    query = select(rec.c.subsidiary, rec.c.chain).distinct().order_by(rec.c.subsidiary, rec.c.chain)
    if subsidiary:
        query = query.where(rec.c.subsidiary == subsidiary)
    return [tuple(r) for r in conn.execute(query)]


def verify(conn: Connection, rt, subsidiary: str, chain: str) -> Verification:
    """Walk a chain from its first record: positions without gap, each record linked to the one
    before, each hash (or signature) right for its fields, and each registration matching the issued
    document it records (number, date, amounts). Reads in chunks of :data:`CHUNK` records."""
    sub, scheme = scheme_of(rt, subsidiary)
    out = Verification(subsidiary, chain)
    if scheme is None:
        out.problems.append((0, "no fiscal chain for this storefront"))
        return out
    expected_position, prev = 1, ""
    while True:
        page = conn.execute(
            select(rec, inv.c.kind.label("inv_kind"), inv.c.series.label("inv_series"), inv.c.fiscal_year.label("inv_year"),
                   inv.c.seq.label("inv_seq"), inv.c.issued_on.label("inv_issued_on"), inv.c.tax_minor.label("inv_tax"),
                   inv.c.total_minor.label("inv_total"), inv.c.buyer_vat_number)
            .join(inv, inv.c.id == rec.c.invoice_id)
            .where(rec.c.subsidiary == subsidiary, rec.c.chain == chain, rec.c.position >= expected_position)
            .order_by(rec.c.position).limit(CHUNK)
        ).mappings().all()
        for r in page:
            out.records += 1
            if r["position"] != expected_position:
                out.problems.append((expected_position, f"missing record(s) before position {r['position']}"))
            if r["prev_hash"] != prev:
                out.problems.append((r["position"], "not linked to the previous record's hash"))
            if not scheme.check(rt.settings, scheme.canonical(sub, dict(r)), r["hash"]):
                out.problems.append((r["position"], "hash does not match the record's fields"))
            document = type("Row", (), {"kind": r["inv_kind"], "series": r["inv_series"], "fiscal_year": r["inv_year"],
                                        "seq": r["inv_seq"], "tax_minor": r["inv_tax"], "total_minor": r["inv_total"],
                                        "buyer_vat_number": r["buyer_vat_number"]})
            recorded = {k: r[k] for k in ("issuer_id", "number", "doc_type", "tax_minor", "total_minor")}
            if r["issued_on"] != r["inv_issued_on"] or recorded != scheme.fields(sub, document):
                out.problems.append((r["position"], "record differs from the issued document"))
            expected_position, prev = r["position"] + 1, r["hash"]
        if len(page) < CHUNK:
            return out


# --- what a national format and the PDF need of the chain ------------------------------------------


def _jsonable(sub, record: dict) -> dict:
    out = {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in record.items()}
    out["generated_local"] = local_time(sub, record["generated_at"]).isoformat()
    return out


def atcud(sub, record: dict) -> str:
    """Portugal's unique document code: the series' validation code (given by the AT per series,
    storefront data ``fiscal.series_codes``), a hyphen, the document's number in its series."""
    code = sub.fiscal.get("series_codes", {}).get(record["chain"], "0")  # "0": a series not yet communicated
    return f"{code}-{record['number'].rsplit('/', 1)[1]}"


def context(conn: Connection, rt, row: dict) -> dict | None:
    """The fiscal chain's part of an issued document, JSON-ready, for the national formats
    (:class:`core.context.EInvoiceContext` ``fiscal``): its records (registration, annulment), the
    record before each, the registration of the invoice it credits, and the storefront's data."""
    sub, scheme = scheme_of(rt, row["subsidiary"])
    if scheme is None:
        return None
    own = records(conn, row["id"])
    credited = records(conn, row["credited_invoice_id"]) if row.get("credited_invoice_id") else []
    return {
        "scheme": scheme.code,
        "account_id": row["account_id"],
        "issuer": {"country": sub.country, "national_id": national_id(sub), **sub.legal_entity},
        "data": sub.fiscal,
        "records": [_jsonable(sub, r) for r in own],
        "previous": {str(r["position"]): (_jsonable(sub, p) if (p := previous(conn, r)) else None) for r in own},
        "credited": _jsonable(sub, credited[0]) if credited else None,
        "atcud": atcud(sub, own[0]) if own and scheme is Portugal else None,
    }


_PT_RATES = {"23": ("I7", "I8"), "13": ("I5", "I6"), "6": ("I3", "I4")}


def qr(conn: Connection, rt, row: dict, taxes: list[dict]) -> tuple[str, str] | None:
    """(caption, payload) of the QR code a fiscal chain puts on the PDF, or None.

    * Spain (Orden HAC/1177/2024, art. 20-21, and the AEAT's "Características del QR"): the cotejo
      URL ``…/ValidarQR?nif=…&numserie=…&fecha=dd-mm-yyyy&importe=…``, captioned VERI*FACTU.
    * Portugal (Portaria 195/2020, Especificações técnicas do código QR): ``A:…*B:…*…*R:…``, fields
      in the official order, amounts with two decimals, Q the 1st, 11th, 21st and 31st characters
      of the signature, R the software certificate number; captioned with the ATCUD.
    """
    from urllib.parse import urlencode

    sub, scheme = scheme_of(rt, row["subsidiary"])
    own = [r for r in records(conn, row["id"]) if r["kind"] == "alta"] if scheme else []
    if not own:
        return None
    r = own[0]
    if scheme is Spain:
        query = urlencode({"nif": r["issuer_id"], "numserie": r["number"], "fecha": r["issued_on"].strftime("%d-%m-%Y"),
                           "importe": amount(r["total_minor"])})
        return "VERI*FACTU", f"{sub.fiscal['qr_url']}?{query}"
    buyer = row.get("buyer_vat_number") or ""
    buyer = buyer[2:] if buyer[:2] == "PT" else (buyer or "999999990")  # 999999990: the final consumer
    fields = [("A", r["issuer_id"]), ("B", buyer), ("C", row.get("buyer_country") or "PT"), ("D", r["doc_type"]), ("E", "N"),
              ("F", r["issued_on"].strftime("%Y%m%d")), ("G", r["number"]), ("H", atcud(sub, r)), ("I1", "PT")]
    sums: dict[str, int] = {}
    not_taxed = 0
    for t in taxes:
        rate = str(Decimal(t["rate_ppm"]).scaleb(-4).normalize())
        if t["category"] == "S" and rate in _PT_RATES:
            base, vat = _PT_RATES[rate]
            sums[base] = sums.get(base, 0) + t["base_minor"]
            sums[vat] = sums.get(vat, 0) + t["tax_minor"]
        elif t["category"] in ("E", "Z"):
            sums["I2"] = sums.get("I2", 0) + t["base_minor"]
        else:  # reverse charge, intra-EU, outside the scope of Portuguese VAT
            not_taxed += t["base_minor"]
    fields += [(k, amount(sums[k])) for k in ("I2", "I3", "I4", "I5", "I6", "I7", "I8") if k in sums]
    if not_taxed:
        fields.append(("L", amount(not_taxed)))
    signature = r["hash"]
    fields += [("N", amount(row["tax_minor"])), ("O", amount(row["total_minor"])),
               ("Q", "".join(signature[i] for i in (0, 10, 20, 30))), ("R", sub.fiscal.get("software_certificate", "0"))]
    return f"ATCUD: {atcud(sub, r)}", "*".join(f"{k}:{v}" for k, v in fields)
