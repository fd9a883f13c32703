"""The official XML schemas of the national formats, vendored under ``data/<country>/`` (their
source and licence in ``data/README.md``), loaded once and used offline: the parser never touches
the network, and the absolute ``schemaLocation`` URLs of the Polish schemas are answered from the
local copies."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

DATA = Path(__file__).parent / "data"
SCHEMAS = {
    "IT": DATA / "it" / "Schema_del_file_xml_FatturaPA_v1.2.2.xsd",
    "PL": DATA / "pl" / "schemat_FA(3)_v1-0E.xsd",
}
_PL_BASE = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"


class _Local(etree.Resolver):
    """Answers an imported schema from the vendored copy with the same file name, or refuses."""

    def resolve(self, url, pubid, context):
        name = url.rsplit("/", 1)[-1]
        for folder in (DATA / "it", DATA / "pl"):
            if (folder / name).exists() and (url.startswith(_PL_BASE) or "/" not in url or url.startswith("file:")
                                             or url.startswith(str(folder))):
                return self.resolve_filename(str(folder / name), context)
        raise OSError(f"schema import {url!r} is not vendored (no network access)")


@cache
def schema(country: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_Local())
    return etree.XMLSchema(etree.parse(str(SCHEMAS[country]), parser))


def problems(country: str, xml: bytes) -> list[str]:
    """The schema's complaints about a document, empty when it is valid."""
    checker = schema(country)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    if checker.validate(etree.fromstring(xml, parser)):
        return []
    return [f"line {e.line}: {e.message}" for e in checker.error_log]
