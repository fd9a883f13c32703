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


class _Local(etree.Resolver):
    """Answers an imported schema with the vendored copy of the same file name, or refuses."""

    def resolve(self, url, pubid, context):
        name = url.rsplit("/", 1)[-1]
        for folder in (DATA / "it", DATA / "pl"):
            if (folder / name).is_file():
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
