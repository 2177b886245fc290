"""What a file is, from its bytes alone: never from its name or the type its uploader declared.

Allowed: PDF, JPEG, PNG, OFD (GB/T 33190, the Chinese e-invoice format: a ZIP container with an
OFD.xml entry), xlsx and docx (Office Open XML packages: a ZIP whose [Content_Types].xml names a
workbook or a document as its main part, without macros). Everything else is refused with a
DocumentError(field="content", rule) of one line.

A ZIP is only inspected, never unpacked: its directory is read, and two small XML entries
([Content_Types].xml, OFD.xml) are read up to a bound and parsed only without a DTD (no entity
expansion), so neither a ZIP bomb nor an XML bomb costs more than that bound.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree import ElementTree

from documents.errors import DocumentError

HEAD_BYTES = 4096            # what detection looks at from the start of a file...
TAIL_BYTES = 4096            # ...and from its end
MAX_ZIP_ENTRIES = 10_000
MAX_XML_ENTRY = 1024 * 1024  # [Content_Types].xml and OFD.xml are a few kilobytes


@dataclass(frozen=True)
class Kind:
    name: str                # pdf | jpeg | png | ofd | xlsx | docx
    media_type: str


PDF = Kind("pdf", "application/pdf")
JPEG = Kind("jpeg", "image/jpeg")
PNG = Kind("png", "image/png")
OFD = Kind("ofd", "application/ofd")
XLSX = Kind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
DOCX = Kind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
ALLOWED = (PDF, JPEG, PNG, OFD, XLSX, DOCX)
ALLOWED_TEXT = "PDF, JPEG, PNG, OFD, xlsx, docx"

# the content type of an OOXML package's main part -> what the package is (macro-enabled
# variants, templates and every other package type are not in this table: refused)
_OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
}
_VBA = "application/vnd.ms-office.vbaproject"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOMETHING_ELSE = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "a Linux executable"),
    (b"#!", "a script"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old binary Office file (use PDF, xlsx or docx)"),
    (b"GIF8", "a GIF image (use PNG or JPEG)"),
)


def _refuse(rule: str) -> DocumentError:
    return DocumentError("content", rule)


def detect(head: bytes, tail: bytes, size: int, file: BinaryIO) -> Kind:
    """The kind of a file of `size` bytes, from its first bytes (`head`), its last ones (`tail`)
    and, for a ZIP container, the seekable `file` itself."""
    if size == 0:
        raise _refuse("the file is empty")
    if head.startswith(b"%PDF-"):
        if b"%%EOF" not in tail[-2048:]:
            raise _refuse("a PDF must end with %%EOF: this one is truncated or damaged")
        return PDF
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 33 or head[12:16] != b"IHDR" or b"IEND" not in tail:
            raise _refuse("a PNG signature without a whole image (IHDR ... IEND): truncated or damaged")
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(file)
    what = next((name for magic, name in _SOMETHING_ELSE if head.startswith(magic)), None)
    suffix = f" (it is {what})" if what else ""
    raise _refuse(f"not an allowed type ({ALLOWED_TEXT}){suffix}")


def _zip_kind(file: BinaryIO) -> Kind:
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise _refuse(f"a ZIP archive of more than {MAX_ZIP_ENTRIES} entries")
            by_name = {i.filename: i for i in infos}
            if "OFD.xml" in by_name:
                root = _xml(z, by_name["OFD.xml"], "OFD.xml")
                if root is None or _local(root.tag) != "OFD":
                    raise _refuse("an OFD document's OFD.xml must be an <ofd:OFD> document")
                return OFD
            if "[Content_Types].xml" in by_name:
                return _ooxml_kind(z, by_name)
    except DocumentError:
        raise
    except Exception:  # noqa: BLE001 - BadZipFile, an encrypted entry, a bad CRC, a truncated archive...
        raise _refuse("a damaged ZIP archive") from None
    raise _refuse(f"a ZIP archive that is not an OFD, xlsx or docx document (allowed: {ALLOWED_TEXT})")


def _ooxml_kind(z: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> Kind:
    root = _xml(z, by_name["[Content_Types].xml"], "[Content_Types].xml")
    if root is None or _local(root.tag) != "Types":
        raise _refuse("a ZIP archive whose [Content_Types].xml is not an Office package's")
    overrides: dict[str, str] = {}
    defaults: dict[str, str] = {}
    for el in root:
        ct = (el.get("ContentType") or "").strip().lower()
        if _local(el.tag) == "Override" and el.get("PartName"):
            overrides[el.get("PartName").lstrip("/").lower()] = ct
        elif _local(el.tag) == "Default" and el.get("Extension"):
            defaults[el.get("Extension").lower()] = ct
    names = {n.lower() for n in by_name}
    if _VBA in overrides.values() or _VBA in defaults.values() or any(n.endswith("vbaproject.bin") for n in names):
        raise _refuse("an Office document carrying macros (vbaProject): save it as a plain xlsx or docx")
    mains = [(part, _OOXML_MAIN[ct]) for part, ct in overrides.items() if ct in _OOXML_MAIN]
    if len(mains) != 1:
        raise _refuse(f"a ZIP archive that is not an OFD, xlsx or docx document ([Content_Types].xml names "
                      f"{'no' if not mains else 'more than one'} workbook or document main part)")
    part, kind = mains[0]
    if part not in names:
        raise _refuse(f"a ZIP archive whose {kind.name} main part (/{part}) is missing")
    return kind


def _xml(z: zipfile.ZipFile, info: zipfile.ZipInfo, what: str):
    """A small XML entry parsed without any DTD, or None when it is not well-formed XML."""
    if info.file_size > MAX_XML_ENTRY:
        raise _refuse(f"a ZIP archive whose {what} is larger than {MAX_XML_ENTRY} bytes")
    with z.open(info) as f:
        data = f.read(MAX_XML_ENTRY + 1)
    if len(data) > MAX_XML_ENTRY:
        raise _refuse(f"a ZIP archive whose {what} is larger than {MAX_XML_ENTRY} bytes")
    if b"\x00" in data:
        raise _refuse(f"a ZIP archive whose {what} is not UTF-8 XML")
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise _refuse(f"a ZIP archive whose {what} declares a DTD (refused: entity expansion)")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
