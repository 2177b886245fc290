"""Payload encryption: personal data out of Temporal's plain sight.

Every payload a client or worker writes (workflow inputs and results, activity arguments and
results, update and query arguments, memos, the Web UI summary, failure details) is encrypted with
AES-256-GCM before it leaves the process, when keys are configured:

    DISBURSE_PAYLOAD_KEYS=/run/secrets/disburse-payload-keys

a file of `KEY_ID=BASE64KEY` lines (32-byte keys, standard base64; blank lines and `#` comments
allowed). The first key encrypts; every listed key decrypts, so a key is rotated by putting a new
line first and keeping the old ones as long as any history may hold payloads written under them.
An encrypted payload carries `encoding: binary/encrypted` and `encryption-key-id: KEY_ID` in its
metadata; its data is a 12-byte random nonce followed by the ciphertext of the original payload
(metadata and data), authenticated together with the key id.

Payloads without that encoding are passed through unchanged when decoding: histories recorded
before encryption was switched on still replay. Failure messages and stack traces are moved into
the encrypted attributes too (DefaultFailureConverterWithEncodedAttributes). Search attributes and
workflow ids are never encrypted by a codec: the project keeps personal data out of them.

The Web UI's and CLI's "codec endpoint" (Temporal's codec server protocol: POST /encode and
/decode with a JSON body `{"payloads": [...]}`, each payload's data and metadata values in base64,
answered in the same shape) is `encode_json` / `decode_json`: framework-agnostic functions a web
layer mounts behind its login.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

if TYPE_CHECKING:      # `cryptography` is imported when keys are configured: a client without keys
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM      # (`disburse status`) starts faster

SETTING = "DISBURSE_PAYLOAD_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
MAX_CODEC_BODY = 32 * 1024 * 1024        # a codec request from the Web UI is one event's payloads
_KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_AAD = b"disburse-payload/v1:"


class PayloadKeyError(ValueError):
    """The payload keys are missing, unreadable or malformed, or a payload names a key that is not
    configured. A setting no restart fixes: `disburse worker` exits 78."""
    exit_code = 78


class PayloadDecryptionError(ValueError):
    """An encrypted payload failed authentication: altered, truncated, or moved to another key id."""


class CodecRequestError(ValueError):
    """A codec server request that cannot be answered (malformed, too large, undecryptable): the
    web layer answers 400 with this one-line message."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads. `keys` is [(key_id, 32-byte key), ...]: the first encrypts,
    all decrypt. A random 96-bit nonce per payload: rotate a key well before 2**32 payloads."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        if not keys:
            raise PayloadKeyError("no payload key given")
        self._keys: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not _KEY_ID_RE.fullmatch(key_id):
                raise PayloadKeyError(f"key id {key_id!r}: use 1-64 letters, digits or . _ : -")
            if len(key) != 32:
                raise PayloadKeyError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
            if key_id in self._keys:
                raise PayloadKeyError(f"key id {key_id!r} twice")
            self._keys[key_id] = AESGCM(key)
        self.current_key_id = keys[0][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    # the work is CPU-only and quick: synchronous, so the codec server functions need no event loop
    def encode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.current_key_id
        aead = self._keys[key_id]
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = aead.encrypt(nonce, p.SerializeToString(deterministic=True), _AAD + key_id.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed))
        return out

    def decode_sync(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _decode_one(self, p: Payload) -> Payload:
        raw_id = p.metadata.get(KEY_ID, b"")
        key_id = raw_id.decode("utf-8", "replace")
        aead = self._keys.get(key_id)
        if aead is None:
            shown = key_id if _KEY_ID_RE.fullmatch(key_id) else repr(key_id[:64])
            raise PayloadKeyError(f"payload encrypted under key {shown}, which is not among the configured keys "
                                  f"({', '.join(self._keys)}); add it back to {SETTING}")
        if len(p.data) < NONCE_BYTES + 16:
            raise PayloadDecryptionError(f"encrypted payload under key {key_id} is truncated")
        from cryptography.exceptions import InvalidTag
        try:
            plain = aead.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], _AAD + raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(f"encrypted payload under key {key_id} failed authentication "
                                         "(altered, truncated or not written under this key)") from None
        original = Payload()
        original.ParseFromString(plain)
        return original

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)


# -------------------------------------------------------------------------------------- settings

def load_keys(path: str | os.PathLike) -> list[tuple[str, bytes]]:
    """The keys of a key file, in order. Errors name the file and line, never a key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PayloadKeyError(f"{SETTING}={p}: cannot read the key file ({e.__class__.__name__}: "
                              f"{getattr(e, 'strerror', None) or 'not UTF-8'})") from None
    keys: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{SETTING}={p}: line {n}"
        key_id, sep, value = line.partition("=")
        if not sep:
            raise PayloadKeyError(f"{where}: expected KEY_ID=BASE64KEY")
        key_id, value = key_id.strip(), value.strip()
        if not _KEY_ID_RE.fullmatch(key_id):
            raise PayloadKeyError(f"{where}: key id {key_id[:64]!r}: use 1-64 letters, digits or . _ : -, "
                                  "starting with a letter or digit")
        if key_id in seen:
            raise PayloadKeyError(f"{where}: key id {key_id!r} twice")
        try:
            key = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"{where}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise PayloadKeyError(f"{where}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32 "
                                  "(openssl rand -base64 32)")
        seen.add(key_id)
        keys.append((key_id, key))
    if not keys:
        raise PayloadKeyError(f"{SETTING}={p}: no key in the file (lines KEY_ID=BASE64KEY, the first encrypts)")
    return keys


def codec_from_settings(environ=None) -> Optional[EncryptionCodec]:
    """The codec for DISBURSE_PAYLOAD_KEYS, or None when it is unset or empty. A set but unusable
    setting is an error (PayloadKeyError), never a silent fallback to plain text."""
    env = os.environ if environ is None else environ
    path = (env.get(SETTING) or "").strip()
    if not path:
        return None
    return EncryptionCodec(load_keys(path))


def data_converter(codec: Optional[PayloadCodec] = None) -> DataConverter:
    """The project's data converter: `pydantic_data_converter`, with the encryption codec (and
    failure messages moved into encrypted attributes) when keys are configured (or `codec` given);
    otherwise `pydantic_data_converter` itself."""
    codec = codec if codec is not None else codec_from_settings()
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


# ------------------------------------------------------------------------- codec server protocol

def _b64(value, where: str) -> bytes:
    """A proto3-JSON bytes field: standard or URL-safe base64, padded or not."""
    if not isinstance(value, str):
        raise CodecRequestError(f"{where}: expected a base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CodecRequestError(f"{where}: not base64") from None


def _parse(body: bytes) -> list[Payload]:
    """The payloads of a codec server request: JSON `{"payloads": [{"metadata": {name: base64},
    "data": base64}, ...]}` (Temporal's Payloads message in proto3 JSON; unknown keys ignored)."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise CodecRequestError("the request body must be bytes")
    if len(body) > MAX_CODEC_BODY:
        raise CodecRequestError(f"request body too large (over {MAX_CODEC_BODY} bytes)")
    try:
        doc = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CodecRequestError('expected a JSON body {"payloads": [...]}') from None
    if not isinstance(doc, dict):
        raise CodecRequestError('expected a JSON object {"payloads": [...]}')
    items = doc.get("payloads", [])
    if not isinstance(items, list):
        raise CodecRequestError("payloads: expected a list")
    payloads = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise CodecRequestError(f"payloads[{i}]: expected an object")
        metadata = item.get("metadata", {})
        if not isinstance(metadata, dict):
            raise CodecRequestError(f"payloads[{i}].metadata: expected an object")
        payloads.append(Payload(metadata={str(k): _b64(v, f"payloads[{i}].metadata.{str(k)[:64]}")
                                          for k, v in metadata.items()},
                                data=_b64(item.get("data", ""), f"payloads[{i}].data")))
    return payloads


def _answer(payloads: Sequence[Payload]) -> bytes:
    def enc(b: bytes) -> str:
        return base64.b64encode(b).decode("ascii")
    return json.dumps({"payloads": [{"metadata": {k: enc(v) for k, v in p.metadata.items()}, "data": enc(p.data)}
                                    for p in payloads]}).encode()


def _codec() -> EncryptionCodec:
    codec = codec_from_settings()
    if codec is None:
        raise PayloadKeyError(f"{SETTING} is not set: the codec endpoint has no keys")
    return codec


def decode_json(body: bytes) -> bytes:
    """POST /decode of the codec server protocol: the payloads decrypted (plain ones as they are).
    CodecRequestError for a request it cannot answer; PayloadKeyError when no keys are configured."""
    codec = _codec()
    payloads = _parse(body)
    try:
        return _answer(codec.decode_sync(payloads))
    except (PayloadKeyError, PayloadDecryptionError, ValueError) as e:
        raise CodecRequestError(str(e)) from None


def encode_json(body: bytes) -> bytes:
    """POST /encode of the codec server protocol: the payloads encrypted under the current key."""
    codec = _codec()
    return _answer(codec.encode_sync(_parse(body)))
