"""Evidence files (documents/): stored once under their SHA-256, the hash checked on every read,
the type decided by the bytes (never by the name or the declared type), the size limit checked
while the upload streams in, hostile file names made harmless, the metadata of each attachment in
the `document` table and in the audit record; the same store on an S3-compatible server (moto)."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import struct
import threading
import zipfile
import zlib
from pathlib import Path

import pytest

import documents
from documents import DocumentError, LocalStore, sanitize_filename

MiB = 1024 * 1024


# ----------------------------------------------------------------------------- samples, made here

def pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
            b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)           # 1x1, 8-bit RGB
    idat = zlib.compress(b"\x00\xff\x00\x00")                      # filter 0, one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg() -> bytes:
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return buf.getvalue()


def ofd() -> bytes:
    return _zip({
        "OFD.xml": '<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" '
                   'Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>d1</ofd:DocID>'
                   '</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>'.encode(),
        "Doc_0/Document.xml": b'<?xml version="1.0" encoding="UTF-8"?><ofd:Document '
                              b'xmlns:ofd="http://www.ofdspec.org/2016"/>',
    })


_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="{part}" ContentType="{ct}"/></Types>')


def ooxml(part: str, content_type: str, extra: dict[str, bytes] | None = None) -> bytes:
    return _zip({"[Content_Types].xml": _CT.format(part=part, ct=content_type).encode(),
                 "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
                 part.lstrip("/"): b'<?xml version="1.0"?><root/>', **(extra or {})})


def docx() -> bytes:
    return ooxml("/word/document.xml",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")


def xlsx() -> bytes:
    try:
        from openpyxl import Workbook
    except ImportError:      # the test extra has it; a hand-made package says the same
        return ooxml("/xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")
    wb = Workbook()
    wb.active["A1"] = "贷款合同 L-1"
    wb.active["B1"] = 8000000
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def exe() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"PE\x00\x00" + b"\x00" * 200


SAMPLES = {
    "pdf": (pdf, "application/pdf"),
    "png": (png, "image/png"),
    "jpeg": (jpeg, "image/jpeg"),
    "ofd": (ofd, "application/ofd"),
    "xlsx": (xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "docx": (docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
}


@pytest.fixture()
def docs_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "documents"
    monkeypatch.setenv("DISBURSE_DOCUMENTS_DIR", str(root))
    monkeypatch.delenv("DISBURSE_DOCUMENTS_S3_BUCKET", raising=False)
    monkeypatch.delenv("DISBURSE_DOCUMENTS_MAX_BYTES", raising=False)
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


def leftovers(root: Path) -> list[Path]:
    tmp = root / ".tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


# --------------------------------------------------------------------------------------- the store

def test_the_same_bytes_are_stored_once_under_their_sha256(docs_dir):
    data = pdf()
    first = documents.put(data, filename="合同.pdf", declared_type="application/pdf")
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert (first.size, first.media_type, first.created) == (len(data), "application/pdf", True)
    path = docs_dir / first.sha256[:2] / first.sha256[2:4] / first.sha256
    assert stored_files(docs_dir) == [path]
    inode = path.stat().st_ino
    again = documents.put(io.BytesIO(data), filename="another name.pdf", declared_type="application/pdf")
    assert (again.sha256, again.created) == (first.sha256, False)
    assert stored_files(docs_dir) == [path] and path.stat().st_ino == inode
    assert documents.exists(first.sha256) and documents.get(first.sha256) == data
    assert not documents.exists("0" * 64)
    assert leftovers(docs_dir) == []


def test_stored_files_are_read_only(docs_dir):
    doc = documents.put(png(), filename="x.png", declared_type="image/png")
    mode = (docs_dir / doc.sha256[:2] / doc.sha256[2:4] / doc.sha256).stat().st_mode
    assert stat.S_IMODE(mode) & 0o222 == 0


def test_a_file_altered_on_disk_is_refused_when_read(docs_dir):
    doc = documents.put(pdf(), filename="a.pdf", declared_type="application/pdf")
    path = docs_dir / doc.sha256[:2] / doc.sha256[2:4] / doc.sha256
    path.chmod(0o644)
    path.write_bytes(pdf().replace(b"Catalog", b"Catalox"))
    with pytest.raises(DocumentError) as e:
        documents.get(doc.sha256)
    assert e.value.field == "sha256" and "do not match" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_damaged_copy_is_replaced_by_the_next_put_of_the_right_bytes(docs_dir):
    data = pdf()
    doc = documents.put(data, filename="a.pdf", declared_type="application/pdf")
    path = docs_dir / doc.sha256[:2] / doc.sha256[2:4] / doc.sha256
    path.chmod(0o644)
    path.write_bytes(b"garbage")
    assert documents.put(data, filename="a.pdf", declared_type="application/pdf").created is True
    assert documents.get(doc.sha256) == data


def test_unknown_and_malformed_hashes(docs_dir):
    with pytest.raises(documents.DocumentNotFound):
        documents.get("ab" * 32)
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31, "", "ab" * 32 + "\n"):
        with pytest.raises(DocumentError) as e:
            documents.get(bad)
        assert e.value.field == "sha256"
        assert documents.exists(bad) is False


def test_concurrent_puts_of_the_same_bytes_leave_one_file(docs_dir):
    data = jpeg()
    results, errors = [], []

    def put():
        try:
            results.append(documents.put(data, filename="p.jpg", declared_type="image/jpeg"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and {r.sha256 for r in results} == {hashlib.sha256(data).hexdigest()}
    assert len(stored_files(docs_dir)) == 1 and leftovers(docs_dir) == []


# ------------------------------------------------------------------------------------------ types

@pytest.mark.parametrize("kind", SAMPLES)
def test_each_allowed_type_is_accepted(docs_dir, kind):
    make, media_type = SAMPLES[kind]
    data = make()
    doc = documents.put(data, filename=f"evidence.{kind}", declared_type=media_type)
    assert (doc.media_type, doc.size) == (media_type, len(data))
    assert documents.get(doc.sha256) == data


def test_the_type_is_the_contents_not_the_name_or_the_declared_type(docs_dir):
    doc = documents.put(png(), filename="scan.pdf", declared_type="application/pdf")
    assert doc.media_type == "image/png"
    doc = documents.put(ofd(), filename="fapiao.zip", declared_type="application/zip")
    assert doc.media_type == "application/ofd"


@pytest.mark.parametrize("name,data,fragment", [
    ("an executable renamed .pdf", exe(), "not an allowed type"),
    ("a shell script", b"#!/bin/sh\nrm -rf /\n", "not an allowed type"),
    ("text", "贷款合同".encode(), "not an allowed type"),
    ("empty", b"", "empty"),
    ("a truncated PDF (no %%EOF)", pdf()[:-7], "PDF"),
    ("a PNG signature alone", b"\x89PNG\r\n\x1a\n", "PNG"),
    ("a plain ZIP", _zip({"a.txt": b"x"}), "ZIP"),
    ("a damaged ZIP", b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
    ("a macro-enabled workbook", ooxml("/xl/workbook.xml", "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
     "ZIP"),
    ("a docx carrying macros", ooxml("/word/document.xml",
                                     "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
                                     {"word/vbaProject.bin": b"\xd0\xcf\x11\xe0"}), "macros"),
    ("content types with a DTD", _zip({"[Content_Types].xml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]>'
                                       b'<Types/>', "word/document.xml": b"<x/>"}), "ZIP"),
    ("a main part that is missing", _zip({"[Content_Types].xml": _CT.format(
        part="/word/document.xml",
        ct="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml").encode()}), "ZIP"),
    ("OFD.xml that is not OFD", _zip({"OFD.xml": b"<html/>"}), "OFD"),
])
def test_refused_contents(docs_dir, name, data, fragment):
    with pytest.raises(DocumentError) as e:
        documents.put(data, filename="evidence.pdf", declared_type="application/pdf")
    assert e.value.field in ("content", "size"), name
    assert fragment in str(e.value), (name, str(e.value))
    assert "\n" not in str(e.value)
    assert stored_files(docs_dir) == [] and leftovers(docs_dir) == []


# ------------------------------------------------------------------------------------------- size

class Endless:
    """A file that never ends: read() would never return everything."""

    def __init__(self, head: bytes = b"%PDF-1.7\n") -> None:
        self.head, self.served = head, 0

    def read(self, n: int = -1) -> bytes:
        assert n is not None and n > 0, "the store must read in bounded chunks"
        out = (self.head + b"\x00" * n)[:n] if self.served == 0 else b"\x00" * n
        self.served += len(out)
        return out


def test_an_oversized_stream_is_refused_without_reading_it_all(docs_dir, monkeypatch):
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", str(MiB))
    source = Endless()
    with pytest.raises(DocumentError) as e:
        documents.put(source, filename="huge.pdf", declared_type="application/pdf")
    assert e.value.field == "size" and "1048576" in str(e.value)
    assert source.served <= 2 * MiB
    assert stored_files(docs_dir) == [] and leftovers(docs_dir) == []


def test_an_oversized_generator_is_refused_too(docs_dir, monkeypatch):
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", str(MiB))
    pulled = 0

    def chunks():
        nonlocal pulled
        yield b"%PDF-1.7\n"
        while True:
            pulled += 65536
            yield b"\x00" * 65536
    with pytest.raises(DocumentError) as e:
        documents.put(chunks(), filename="huge.pdf", declared_type="application/pdf")
    assert e.value.field == "size" and pulled <= MiB + 65536


def test_the_limit_is_inclusive_and_twenty_mib_by_default(docs_dir, monkeypatch):
    assert documents.max_bytes() == 20 * MiB
    data = pdf()
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", str(len(data)))
    assert documents.put(data, filename="a.pdf", declared_type="application/pdf").size == len(data)
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", str(len(data) - 1))
    with pytest.raises(DocumentError):
        documents.put(data, filename="a.pdf", declared_type="application/pdf")


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "1e6", "99999999999999999999"])
def test_a_bad_size_setting_is_named(docs_dir, monkeypatch, bad):
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", bad)
    with pytest.raises(documents.SettingsError, match="DISBURSE_DOCUMENTS_MAX_BYTES"):
        documents.put(pdf(), filename="a.pdf", declared_type="application/pdf")


def test_a_real_file_streams_in(docs_dir, tmp_path):
    src = tmp_path / "upload.bin"
    src.write_bytes(xlsx())
    with open(src, "rb") as f:
        doc = documents.put(f, filename="upload.xlsx", declared_type="")
    assert doc.media_type.endswith("spreadsheetml.sheet")


# -------------------------------------------------------------------------------------- file names

@pytest.mark.parametrize("raw,expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\system32\\evil.pdf", "evil.pdf"),
    ("C:\\Users\\王\\贷款合同.pdf", "贷款合同.pdf"),
    ("a\x00b\x1b[31mc\r\n.pdf", "ab[31mc.pdf"),
    ("\u202egnp.exe", "gnp.exe"),
    ("..", "document"),
    ("", "document"),
    ("   ", "document"),
    (".hidden.pdf", "hidden.pdf"),
    ("合同\u3000扫描件.pdf", "合同\u3000扫描件.pdf"),
])
def test_hostile_file_names_are_made_harmless(raw, expected):
    assert sanitize_filename(raw) == expected


def test_a_ten_kilobyte_name_is_bounded_and_keeps_its_extension():
    name = sanitize_filename("a" * 10_000 + ".pdf")
    assert len(name) <= documents.MAX_FILENAME and name.endswith(".pdf")
    name = sanitize_filename("合" * 10_000)
    assert len(name) <= documents.MAX_FILENAME and len(name.encode()) <= 4 * documents.MAX_FILENAME
    assert sanitize_filename(None) == "document"


# -------------------------------------------------------------------------------------- metadata

def test_attach_records_the_document_once_per_application_purpose_and_year(db, docs_dir):
    data = pdf()
    row = documents.attach("app-1", data, filename="../../etc/贷款合同.pdf", purpose="submission", year=0,
                           uploaded_by="op-1")
    assert (row.application_id, row.sha256, row.purpose, row.year) == ("app-1", hashlib.sha256(data).hexdigest(),
                                                                        "submission", 0)
    assert (row.filename, row.media_type, row.size, row.uploaded_by) == ("贷款合同.pdf", "application/pdf", len(data),
                                                                          "op-1")
    again = documents.attach("app-1", data, filename="other.pdf", purpose="submission", year=0, uploaded_by="op-2")
    assert again.id == row.id
    documents.attach("app-1", data, filename="y2027.pdf", purpose="evidence", year=2027, uploaded_by="op-1")
    documents.attach("app-1", png(), filename="scan.png", purpose="information", year=0, uploaded_by="op-1")
    documents.attach("app-2", data, filename="shared.pdf", purpose="submission", year=0, uploaded_by="op-1")
    listed = documents.documents_of("app-1")
    assert [(d["purpose"], d["year"], d["filename"]) for d in listed] == [
        ("submission", 0, "贷款合同.pdf"), ("evidence", 2027, "y2027.pdf"), ("information", 0, "scan.png")]
    assert {"sha256", "size", "media_type", "uploaded_by", "uploaded_at"} <= set(listed[0])
    assert len(stored_files(docs_dir)) == 2                   # the PDF once for both applications, the PNG
    assert documents.documents_of("app-none") == []


@pytest.mark.parametrize("field,kw", [
    ("purpose", {"purpose": "gossip"}),
    ("year", {"year": -1}),
    ("year", {"year": 1999}),
    ("year", {"year": True}),
    ("application_id", {"application_id": ""}),
    ("application_id", {"application_id": "app\x00x"}),
    ("uploaded_by", {"uploaded_by": ""}),
    ("uploaded_by", {"uploaded_by": "x" * 65}),
])
def test_attach_refuses_bad_metadata_before_storing(db, docs_dir, field, kw):
    args = {"application_id": "app-1", "purpose": "submission", "year": 0, "uploaded_by": "op-1", **kw}
    app_id = args.pop("application_id")
    with pytest.raises(DocumentError) as e:
        documents.attach(app_id, pdf(), filename="a.pdf", **args)
    assert e.value.field == field
    assert stored_files(docs_dir) == []


def test_a_refused_file_records_nothing(db, docs_dir):
    with pytest.raises(DocumentError):
        documents.attach("app-1", exe(), filename="invoice.pdf", purpose="submission", year=0, uploaded_by="op-1")
    assert documents.documents_of("app-1") == []


def test_the_audit_record_lists_the_documents(db, docs_dir):
    from models.audit import audit_record
    assert audit_record("app-docs") is None
    data = ofd()
    documents.attach("app-docs", data, filename="发票.ofd", purpose="evidence", year=2027, uploaded_by="op-1")
    record = audit_record("app-docs")
    assert [(d["sha256"], d["filename"], d["media_type"], d["purpose"], d["year"]) for d in record["documents"]] == [
        (hashlib.sha256(data).hexdigest(), "发票.ofd", "application/ofd", "evidence", 2027)]


# ------------------------------------------------------------------------------------------- S3

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server():
    try:
        from moto.server import ThreadedMotoServer
        import boto3  # noqa: F401
    except ImportError as e:
        pytest.skip(f"S3 backend not tested: moto[server] / boto3 are not installed ({e.name})")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3(moto_server, monkeypatch, tmp_path):
    import boto3
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(k, raising=False)
    bucket = f"disburse-{os.urandom(4).hex()}"
    client = boto3.client("s3", endpoint_url=moto_server)
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("DISBURSE_DOCUMENTS_S3_BUCKET", bucket)
    monkeypatch.setenv("DISBURSE_DOCUMENTS_S3_ENDPOINT", moto_server)
    monkeypatch.setenv("DISBURSE_DOCUMENTS_DIR", str(tmp_path / "not-used"))
    monkeypatch.delenv("DISBURSE_DOCUMENTS_MAX_BYTES", raising=False)
    return client, bucket


def _keys(client, bucket) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_s3_stores_once_and_verifies_on_read(s3, tmp_path):
    client, bucket = s3
    assert isinstance(documents.store(), documents.S3Store)
    data = pdf()
    first = documents.put(data, filename="a.pdf", declared_type="application/pdf")
    sha = first.sha256
    assert first.created and not documents.put(data, filename="b.pdf", declared_type="").created
    assert _keys(client, bucket) == [f"{sha[:2]}/{sha[2:4]}/{sha}"]
    head = client.head_object(Bucket=bucket, Key=f"{sha[:2]}/{sha[2:4]}/{sha}")
    assert head["ContentType"] == "application/pdf"
    assert documents.exists(sha) and documents.get(sha) == data
    assert not (tmp_path / "not-used").exists()
    client.put_object(Bucket=bucket, Key=f"{sha[:2]}/{sha[2:4]}/{sha}", Body=b"%PDF-tampered")
    with pytest.raises(DocumentError, match="do not match"):
        documents.get(sha)
    with pytest.raises(documents.DocumentNotFound):
        documents.get("cd" * 32)


def test_s3_refuses_what_the_local_store_refuses(s3, monkeypatch):
    client, bucket = s3
    with pytest.raises(DocumentError, match="not an allowed type"):
        documents.put(exe(), filename="x.pdf", declared_type="application/pdf")
    monkeypatch.setenv("DISBURSE_DOCUMENTS_MAX_BYTES", str(MiB))
    source = Endless()
    with pytest.raises(DocumentError) as e:
        documents.put(source, filename="huge.pdf", declared_type="application/pdf")
    assert e.value.field == "size" and source.served <= 2 * MiB
    assert _keys(client, bucket) == []


def test_s3_every_type(s3):
    for make, media_type in SAMPLES.values():
        data = make()
        doc = documents.put(data, filename="x", declared_type="")
        assert doc.media_type == media_type and documents.get(doc.sha256) == data
