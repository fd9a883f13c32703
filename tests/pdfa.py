"""A structural PDF/A-3b check with pikepdf, for the tests.

veraPDF, the reference validator, is a Java program found on neither PyPI nor Debian, so this
checks what can be read from the file's structure, rule by rule of ISO 19005-3 (the clause
numbers are those of veraPDF's PDF/A-3B profile): the header and its binary comment, the
trailer's ID, no encryption, nothing after the last %%EOF, the streams' keys and filters,
the output intent (GTS_PDFA1 with an RGB or grey ICC profile of version < 5), the XMP metadata
(pdfaid part 3, conformance B, every property of a schema that XMP does not predefine declared
in a PDF/A extension schema, no entry of the document information dictionary contradicting it), every font
embedded, every content stream made of PDF operators only, no CMYK without a CMYK profile, no
transparency, no JavaScript or other forbidden action, the annotations, and the embedded files
(MIME type, F and UF, AFRelationship, listed in the catalog's /AF). It does not render glyphs
or compare glyph widths with the font programs.

``check_pdfa(data)`` returns the list of problems, each starting with its clause; ``[]`` means
the file passed. ``check_factur_x(data)`` adds what Factur-X requires of its XML attachment.
"""

from __future__ import annotations

import io
import re

import pikepdf
from lxml import etree

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PDFAID = "http://www.aiim.org/pdfa/ns/id/"
EXT = "http://www.aiim.org/pdfa/ns/extension/"
SCHEMA = "http://www.aiim.org/pdfa/ns/schema#"
PROPERTY = "http://www.aiim.org/pdfa/ns/property#"
FACTUR_X = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
# schemas the XMP specification (2005) and ISO 19005 define: no extension schema needed
PREDEFINED = {
    "http://purl.org/dc/elements/1.1/", "http://ns.adobe.com/xap/1.0/", "http://ns.adobe.com/pdf/1.3/",
    "http://ns.adobe.com/xap/1.0/rights/", "http://ns.adobe.com/xap/1.0/mm/", "http://ns.adobe.com/xap/1.0/bj/",
    "http://ns.adobe.com/xap/1.0/t/pg/", "http://ns.adobe.com/xap/1.0/t/", "http://ns.adobe.com/photoshop/1.0/",
    "http://ns.adobe.com/tiff/1.0/", "http://ns.adobe.com/exif/1.0/", "http://ns.adobe.com/exif/1.0/aux/",
    "http://ns.adobe.com/camera-raw-settings/1.0/", "http://ns.adobe.com/xap/1.0/g/img/",
    PDFAID, EXT, SCHEMA, PROPERTY, "http://www.aiim.org/pdfa/ns/type#", "http://www.aiim.org/pdfa/ns/field#",
}
ALLOWED_FILTERS = {"/ASCIIHexDecode", "/ASCII85Decode", "/FlateDecode", "/RunLengthDecode", "/CCITTFaxDecode",
                   "/JBIG2Decode", "/DCTDecode", "/JPXDecode"}
ALLOWED_ACTIONS = {"/GoTo", "/GoToR", "/GoToE", "/Thread", "/URI", "/Named", "/SubmitForm"}
ALLOWED_NAMED = {"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"}
ALLOWED_ANNOTATIONS = {"/Text", "/Link", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
                       "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret", "/Ink", "/Popup",
                       "/FileAttachment", "/Widget", "/PrinterMark", "/TrapNet", "/Watermark", "/Redact"}
ALLOWED_INTENTS = {"/RelativeColorimetric", "/AbsoluteColorimetric", "/Perceptual", "/Saturation"}
OPERATORS = set(
    "b B b* B* BDC BI BMC BT BX c cm CS cs d d0 d1 Do DP EI EMC ET EX f F f* G g gs h i ID j J K k l m M MP n "
    "q Q re RG rg ri s S SC sc SCN scn sh T* Tc Td TD Tf Tj TJ TL Tm Tr Ts Tw Tz v w W W* y ' \"".split())
INFO_TO_XMP = {  # document information entry → (namespace, property)
    "/Title": ("http://purl.org/dc/elements/1.1/", "title"),
    "/Author": ("http://purl.org/dc/elements/1.1/", "creator"),
    "/Subject": ("http://purl.org/dc/elements/1.1/", "description"),
    "/Keywords": ("http://ns.adobe.com/pdf/1.3/", "Keywords"),
    "/Creator": ("http://ns.adobe.com/xap/1.0/", "CreatorTool"),
    "/Producer": ("http://ns.adobe.com/pdf/1.3/", "Producer"),
}


def check_pdfa(data: bytes) -> list[str]:
    """The problems that keep ``data`` from being PDF/A-3b; ``[]`` when there is none."""
    problems = _file_level(data)
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PdfError as exc:
        return problems + [f"6.1 the file does not open: {exc}"]
    with pdf:
        problems += [f"6.1 syntax: {p}" for p in pdf.check_pdf_syntax()]
        if pdf.is_encrypted or "/Encrypt" in pdf.trailer:
            problems.append("6.1.3-2 the trailer has Encrypt")
        ids = pdf.trailer.get("/ID")
        if not isinstance(ids, pikepdf.Array) or len(ids) != 2 or not bytes(ids[0]):
            problems.append("6.1.3-1 the trailer has no document ID")
        problems += _objects(pdf)
        problems += _catalog(pdf)
        profile_space = _output_intent(pdf, problems)
        problems += _metadata(pdf)
        problems += _pages(pdf, profile_space)
        problems += _embedded_files(pdf)
    return problems


def check_factur_x(data: bytes) -> list[str]:
    """:func:`check_pdfa`, and the Factur-X XML attachment as the Factur-X 1.0 specification wants it."""
    problems = check_pdfa(data)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        names = pdf.Root.get("/Names", {}).get("/EmbeddedFiles", {}).get("/Names", [])
        specs = {str(names[i]): names[i + 1] for i in range(0, len(names), 2)}
        spec = specs.get("factur-x.xml")
        if spec is None:
            return problems + ["Factur-X: no embedded file named factur-x.xml"]
        if spec.get("/AFRelationship") not in ("/Data", "/Alternative", "/Source"):
            problems.append(f"Factur-X: AFRelationship {spec.get('/AFRelationship')} is not Data, Alternative or Source")
        if spec.EF.F.get("/Subtype") != "/text/xml":
            problems.append("Factur-X: factur-x.xml is not text/xml")
        meta = _xmp_tree(pdf)
        fx = {e.tag.split("}")[1]: (e.text or "").strip() for e in meta.iter(f"{{{FACTUR_X}}}*")} if meta is not None else {}
        for key, want in (("DocumentFileName", "factur-x.xml"), ("DocumentType", "INVOICE"), ("Version", "1.0"),
                          ("ConformanceLevel", "EN 16931")):
            if fx.get(key) != want:
                problems.append(f"Factur-X: XMP fx:{key} is {fx.get(key)!r}, not {want!r}")
    return problems


def _file_level(data: bytes) -> list[str]:
    problems = []
    if not re.match(rb"%PDF-1\.[0-7](\r\n|\r|\n)", data):
        problems.append(f"6.1.2-1 the header is {data[:9]!r}, not %PDF-1.n at byte 0")
    elif not data.startswith(b"%PDF-1.7"):
        problems.append(f"the header declares {data[:8].decode()}, not PDF 1.7")
    second = data.split(b"\n", 2)[1] if data.count(b"\n") >= 2 else b""
    if not (second.startswith(b"%") and len(second) >= 5 and all(b > 127 for b in second[1:5])):
        problems.append("6.1.2-2 the header is not followed by a comment of four bytes above 127")
    end = data.rfind(b"%%EOF")
    if end < 0 or data[end + 5:] not in (b"", b"\n", b"\r\n", b"\r"):
        problems.append("6.1.3-3 data follows the last %%EOF")
    if data.count(b"%%EOF") != 1 or data.count(b"%PDF-") != 1:
        problems.append("the file holds more than one body (an incremental update, or a stale copy in front)")
    return problems


def _walk(obj, seen: set, visit) -> None:
    """Every object reachable from ``obj``, each once."""
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream, pikepdf.Array)) and obj.is_indirect:
        if obj.objgen in seen:
            return
        seen.add(obj.objgen)
    visit(obj)
    if isinstance(obj, pikepdf.Array):
        for item in obj:
            _walk(item, seen, visit)
    elif isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
        for key in obj.keys():
            if key != "/Parent":
                _walk(obj.get(key), seen, visit)


def _objects(pdf: pikepdf.Pdf) -> list[str]:
    problems = []

    def visit(obj):
        if isinstance(obj, pikepdf.Stream):
            for key in ("/F", "/FFilter", "/FDecodeParms"):
                if key in obj.stream_dict:
                    problems.append(f"6.1.7-3 a stream has {key}")
            filters = obj.stream_dict.get("/Filter")
            for f in (filters if isinstance(filters, pikepdf.Array) else [filters] if filters is not None else []):
                if str(f) not in ALLOWED_FILTERS:
                    problems.append(f"6.1.7-4 a stream uses the filter {f}")
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            if "/JS" in obj or obj.get("/S") == "/JavaScript":
                problems.append("6.5.1 JavaScript")
            if obj.get("/Type") == "/Action":
                problems.extend(_action(obj))
            if obj.get("/Type") == "/ExtGState":
                problems.extend(_ext_gstate(obj))
        elif isinstance(obj, pikepdf.Name) and len(bytes(obj.unparse())) - 1 > 127:
            problems.append("6.1.13-4 a name longer than 127 bytes")
        elif isinstance(obj, pikepdf.String) and len(bytes(obj)) > 32767:
            problems.append("6.1.13-3 a string longer than 32767 bytes")

    _walk(pdf.trailer, set(), visit)
    return problems


def _action(action) -> list[str]:
    """An action dictionary (with those that follow it, /Next)."""
    problems = []
    if not isinstance(action, pikepdf.Dictionary):
        return problems  # a destination (an array), not an action
    kind = action.get("/S")
    if kind not in ALLOWED_ACTIONS:
        problems.append(f"6.5.1 an action of type {kind}")
    elif kind == "/Named" and action.get("/N") not in ALLOWED_NAMED:
        problems.append(f"6.5.1-2 the named action {action.get('/N')}")
    following = action.get("/Next", [])
    for nxt in following if isinstance(following, pikepdf.Array) else [following]:
        problems += _action(nxt)
    return problems


def _ext_gstate(gs) -> list[str]:
    problems = []
    if "/TR" in gs or gs.get("/TR2", "/Default") != "/Default" or "/HTP" in gs:
        problems.append("6.2.5 an ExtGState has TR, TR2 or HTP")
    if gs.get("/SMask", "/None") != "/None":
        problems.append("transparency: an ExtGState has a soft mask")
    if float(gs.get("/CA", 1)) < 1 or float(gs.get("/ca", 1)) < 1:
        problems.append("transparency: an ExtGState has an alpha below 1")
    if gs.get("/BM", "/Normal") not in ("/Normal", "/Compatible"):
        problems.append(f"transparency: the blend mode {gs.get('/BM')}")
    if "/RI" in gs and gs.RI not in ALLOWED_INTENTS:
        problems.append(f"6.2.6 the rendering intent {gs.RI}")
    return problems


def _catalog(pdf: pikepdf.Pdf) -> list[str]:
    root, problems = pdf.Root, []
    for key, clause in (("/AA", "6.5.2-1"), ("/Requirements", "6.11"), ("/OCProperties", "6.9")):
        if key in root:
            problems.append(f"{clause} the catalog has {key}")
    if root.get("/NeedsRendering", False):
        problems.append("6.4.2-2 the catalog has NeedsRendering")
    form = root.get("/AcroForm")
    if form is not None and ("/XFA" in form or form.get("/NeedAppearances", False)):
        problems.append("6.4 the form has XFA or NeedAppearances")
    problems += _action(root.get("/OpenAction"))
    item = root.get("/Outlines", {}).get("/First")
    while item is not None:  # the top level of the outline; fpdf2 writes no deeper action
        problems += _action(item.get("/A"))
        item = item.get("/Next")
    names = root.get("/Names", {})
    if "/JavaScript" in names:
        problems.append("6.5.1 the name tree has JavaScript")
    if "/AlternatePresentations" in names:
        problems.append("6.10-1 the name tree has AlternatePresentations")
    return problems


def _output_intent(pdf: pikepdf.Pdf, problems: list[str]) -> str | None:
    """The colour space of the PDF/A output intent's profile ('RGB ', 'GRAY', 'CMYK'), or None."""
    intents = [i for i in pdf.Root.get("/OutputIntents", []) if i.get("/S") == "/GTS_PDFA1"]
    if not intents:
        problems.append("6.2.3 no GTS_PDFA1 output intent")
        return None
    profiles = {i.DestOutputProfile.objgen for i in intents if "/DestOutputProfile" in i}
    if len(profiles) > 1:
        problems.append("6.2.3-2 output intents with different profiles")
    intent = intents[0]
    if "/OutputConditionIdentifier" not in intent:
        problems.append("6.2.3 the output intent has no OutputConditionIdentifier")
    profile = intent.get("/DestOutputProfile")
    if not isinstance(profile, pikepdf.Stream):
        problems.append("6.2.3 the output intent has no ICC profile stream (DestOutputProfile)")
        return None
    icc = profile.read_bytes()
    if len(icc) < 128 or icc[36:40] != b"acsp" or int.from_bytes(icc[:4], "big") != len(icc):
        problems.append("6.2.3 the DestOutputProfile is not an ICC profile")
        return None
    device, space, major = icc[12:16], icc[16:20].decode("latin-1"), icc[8]
    if device not in (b"mntr", b"prtr") or space not in ("RGB ", "CMYK", "GRAY") or major >= 5:
        problems.append(f"6.2.3-1 the ICC profile is {device!r} {space!r} version {major}")
    if int(profile.get("/N", 0)) != {"RGB ": 3, "CMYK": 4, "GRAY": 1}.get(space):
        problems.append(f"the ICC profile stream's N does not match its colour space {space!r}")
    return space


def _xmp_tree(pdf: pikepdf.Pdf):
    meta = pdf.Root.get("/Metadata")
    if not isinstance(meta, pikepdf.Stream):
        return None
    return etree.fromstring(meta.read_bytes())


def _metadata(pdf: pikepdf.Pdf) -> list[str]:
    meta = pdf.Root.get("/Metadata")
    if not isinstance(meta, pikepdf.Stream) or meta.get("/Type") != "/Metadata" or meta.get("/Subtype") != "/XML":
        return ["6.6.2.1-1 the catalog has no XMP metadata stream (Type Metadata, Subtype XML)"]
    raw = meta.read_bytes()
    problems = []
    packet = re.search(rb"<\?xpacket begin=[^?]*\?>", raw)
    if packet and (b"bytes=" in packet.group() or b"encoding=" in packet.group()):
        problems.append("6.6.2.1-2/3 the XMP packet header has a bytes or encoding attribute")
    try:
        tree = etree.fromstring(raw)
    except etree.XMLSyntaxError as exc:
        return problems + [f"6.6.2.1-4 the XMP is not well-formed: {exc}"]
    values = {}
    for desc in tree.iter(f"{{{RDF}}}Description"):
        for attr, value in desc.attrib.items():
            if not attr.startswith(f"{{{RDF}}}"):
                values[attr] = value
        for child in desc:
            values[child.tag] = child
    part, conformance = _text(values.get(f"{{{PDFAID}}}part")), _text(values.get(f"{{{PDFAID}}}conformance"))
    if part != "3":
        problems.append(f"6.6.4-2 pdfaid:part is {part!r}, not 3")
    if conformance != "B":
        problems.append(f"6.6.4-3 pdfaid:conformance is {conformance!r}, not B")
    declared = {}
    for schema in tree.iter(f"{{{SCHEMA}}}namespaceURI"):
        entry = schema.getparent()
        declared[(schema.text or "").strip()] = {(n.text or "").strip() for n in entry.iter(f"{{{PROPERTY}}}name")}
    for tag in values:
        namespace, name = tag[1:].split("}")
        if namespace not in PREDEFINED and name not in declared.get(namespace, ()):
            problems.append(f"6.6.2.3-7 the XMP property {name} of {namespace} is in no extension schema")
    info = pdf.trailer.get("/Info", {})
    for key, (namespace, name) in INFO_TO_XMP.items():  # PDF/A-1 wants both; PDF/A-3 only no contradiction
        xmp = _text(values.get(f"{{{namespace}}}{name}"))
        if key in info and xmp is not None and str(info[key]) != xmp:
            problems.append(f"the document information {key} differs from the XMP {name}")
    return problems


def _text(node) -> str | None:
    """An XMP property's value: its text, or its first rdf:li (Alt, Seq, Bag)."""
    if node is None or isinstance(node, str):
        return node
    item = next(node.iter(f"{{{RDF}}}li"), None)
    return ((item if item is not None else node).text or "").strip()


def _pages(pdf: pikepdf.Pdf, profile_space: str | None) -> list[str]:
    problems = []
    for number, page in enumerate(pdf.pages, 1):
        obj = page.obj
        if "/AA" in obj:
            problems.append(f"6.5.2-2 page {number} has AA")
        if "/PresSteps" in obj:
            problems.append(f"6.10-2 page {number} has PresSteps")
        resources = obj.get("/Resources")
        if resources is None:
            problems.append(f"6.2.2-2 page {number} inherits its resources")
            resources = {}
        for name, font in resources.get("/Font", {}).items():
            problems += [f"page {number} font {name}: {p}" for p in _font(font)]
        for name, xobject in resources.get("/XObject", {}).items():
            problems += [f"page {number} XObject {name}: {p}" for p in _xobject(xobject, profile_space)]
        for annotation in obj.get("/Annots", []):
            problems += [f"page {number}: {p}" for p in _annotation(annotation)]
        for instruction in pikepdf.parse_content_stream(page):
            op = str(instruction.operator)
            if op not in OPERATORS:
                problems.append(f"6.2.2-1 page {number} uses the operator {op!r}")
            elif op in ("k", "K") and profile_space != "CMYK":
                problems.append(f"6.2.4.3-3 page {number} paints in DeviceCMYK without a CMYK output intent")
            elif op in ("rg", "RG") and profile_space != "RGB ":
                problems.append(f"6.2.4.3-2 page {number} paints in DeviceRGB without an RGB output intent")
            elif op == "ri" and str(instruction.operands[0]) not in ALLOWED_INTENTS:
                problems.append(f"6.2.6 page {number} uses the rendering intent {instruction.operands[0]}")
    return problems


def _font(font) -> list[str]:
    subtype = font.get("/Subtype")
    if font.get("/Type") != "/Font":
        return ["6.2.11.2-1 not a font dictionary"]
    if subtype == "/Type3":
        return []
    if subtype == "/Type0":
        problems = []
        encoding = font.get("/Encoding")
        if encoding not in ("/Identity-H", "/Identity-V") and not isinstance(encoding, pikepdf.Stream):
            problems.append(f"6.2.11.3-3 the CMap {encoding} is not embedded")
        for descendant in font.get("/DescendantFonts", []):
            if descendant.get("/Subtype") == "/CIDFontType2" and "/CIDToGIDMap" not in descendant:
                problems.append("6.2.11.3-2 a CIDFontType2 without CIDToGIDMap")
            problems += _embedded_program(descendant)
        return problems
    problems = _embedded_program(font)
    first, last, widths = font.get("/FirstChar"), font.get("/LastChar"), font.get("/Widths")
    if first is None or last is None or widths is None or len(widths) != int(last) - int(first) + 1:
        problems.append("6.2.11.2-4/6 a simple font without consistent FirstChar, LastChar and Widths")
    return problems


def _embedded_program(font) -> list[str]:
    descriptor = font.get("/FontDescriptor", {})
    if not any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
        return [f"6.2.11.4-1 the font {font.get('/BaseFont')} is not embedded"]
    return []


def _xobject(xobject, profile_space: str | None) -> list[str]:
    problems = []
    subtype = xobject.get("/Subtype")
    if subtype == "/PS" or "/OPI" in xobject or "/Ref" in xobject or xobject.get("/Subtype2") == "/PS":
        problems.append("6.2.9 a PostScript, OPI or reference XObject")
    if subtype == "/Image":
        if "/Alternates" in xobject or xobject.get("/Interpolate", False):
            problems.append("6.2.8 an image with Alternates or Interpolate")
        if "/SMask" in xobject or "/SMaskInData" in xobject and int(xobject.SMaskInData) != 0:
            problems.append("transparency: an image with a soft mask")
        if xobject.get("/ColorSpace") == "/DeviceCMYK" and profile_space != "CMYK":
            problems.append("6.2.4.3-3 a DeviceCMYK image without a CMYK output intent")
    if subtype == "/Form" and xobject.get("/Group", {}).get("/S") == "/Transparency":
        problems.append("transparency: a transparency group")
    return problems


def _annotation(annotation) -> list[str]:
    subtype = annotation.get("/Subtype")
    problems = []
    if subtype not in ALLOWED_ANNOTATIONS:
        problems.append(f"6.3.1 an annotation of type {subtype}")
    flags = int(annotation.get("/F", 0))
    if subtype != "/Popup" and ("/F" not in annotation or not flags & 4 or flags & (1 | 2 | 32 | 256)):
        problems.append(f"6.3.2 a {subtype} annotation not printable or hidden")
    if subtype not in ("/Popup", "/Link") and "/AP" not in annotation:
        problems.append(f"6.3.3 a {subtype} annotation without an appearance")
    if "/AA" in annotation or subtype == "/Widget" and "/A" in annotation:
        problems.append(f"6.4.1 a {subtype} annotation with AA, or a widget with an action")
    return problems + _action(annotation.get("/A"))


def _embedded_files(pdf: pikepdf.Pdf) -> list[str]:
    problems = []
    names = pdf.Root.get("/Names", {}).get("/EmbeddedFiles", {}).get("/Names", [])
    listed = {spec.objgen for spec in pdf.Root.get("/AF", [])}
    for i in range(0, len(names), 2):
        name, spec = str(names[i]), names[i + 1]
        if "/F" not in spec or "/UF" not in spec:
            problems.append(f"6.8-2 the file specification of {name} lacks F or UF")
        if "/AFRelationship" not in spec:
            problems.append(f"6.8-3 the file specification of {name} has no AFRelationship")
        if spec.objgen not in listed:
            problems.append(f"6.8 {name} is not listed in the catalog's /AF")
        stream = spec.get("/EF", {}).get("/F")
        if not isinstance(stream, pikepdf.Stream):
            problems.append(f"6.8 {name} has no embedded file stream")
            continue
        if "/Subtype" not in stream:
            problems.append(f"6.8-1 the embedded file {name} has no MIME type (Subtype)")
        if "/ModDate" not in stream.get("/Params", {}):
            problems.append(f"6.8 the embedded file {name} has no modification date")
    return problems


def qr_matrix(data: bytes) -> list[list[int]]:
    """The QR code drawn last on the last page, read back as its module matrix: core/billing/pdf.py
    draws it as filled rectangles one module high (``x y w h re f`` in the content stream), the
    module's size being the height of the last one."""
    from pypdf import PdfReader

    content = PdfReader(io.BytesIO(data)).pages[-1].get_contents().get_data().decode("latin-1")
    runs = [tuple(map(float, m)) for m in re.findall(r"([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) re f", content)]
    module = abs(runs[-1][3])
    runs = [(x, y, w) for x, y, w, h in runs if abs(abs(h) - module) < 0.02]
    left, top = min(r[0] for r in runs), max(r[1] for r in runs)
    size = round((max(r[0] + r[2] for r in runs) - left) / module)
    matrix = [[0] * size for _ in range(size)]
    for x, y, w in runs:
        row, col = round((top - y) / module), round((x - left) / module)
        for c in range(col, col + round(w / module)):
            matrix[row][c] = 1
    return matrix
