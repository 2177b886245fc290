"""Credentials the workflow can verify.

Every state-changing request — a submission, a decision, evidence, a withdrawal, a revocation, a
resumption — carries a statement signed by the console / CLI service after it has authenticated
the person: who acts, in which role and bureau, on which application, which action, when. The
workflow verifies it in the update's validator with a public key the workers hold, so a caller who
can reach Temporal but holds no signing key cannot decide anything; and the bureau a decision
counts for is the one the service vouched for, not one the caller names.

Ed25519 (`cryptography`). Keys have ids, so they rotate: the signer signs with one key, workers
accept every key in their set (`DISBURSE_VERIFY_KEYS`: a directory of `<key id>.pub.pem`; the
signer's private key: `DISBURSE_SIGNING_KEY`, a `<key id>.pem` file). `disburse up` creates a key
pair under var/keys/ on first run.

Validators are not run again when a history replays, so rotating keys never breaks a replay.
"""
from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, Field

Role = Literal["operator", "reviewer", "finance", "ops"]
MAX_AGE = timedelta(minutes=15)          # a credential is used at once; older ones are refused
DEFAULT_KEY_DIR = Path(__file__).resolve().parent.parent / "var" / "keys"


class CredentialError(ValueError):
    """A credential that does not prove what it claims; the message says why."""


class Actor(BaseModel):
    """Who acts, as the service that authenticated them knows it."""
    user: str
    role: Role
    bureau: Optional[str] = None


class Credential(BaseModel):
    key_id: str = Field(max_length=64)
    user: str = Field(max_length=64)
    role: Role
    bureau: Optional[str] = Field(default=None, max_length=100)
    application_id: str = Field(max_length=200)
    action: str = Field(max_length=40)
    issued_at: datetime
    signature: str = Field(max_length=200)

    def claims(self) -> bytes:
        """The signed bytes: every field but the signature, canonical JSON."""
        data = self.model_dump(mode="json", exclude={"signature"})
        data["issued_at"] = self.issued_at.astimezone(timezone.utc).isoformat()
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


class Signer:
    """Holds a private key; signs for an actor the caller has authenticated."""

    def __init__(self, key_id: str, private_key) -> None:
        self.key_id, self._key = key_id, private_key

    @classmethod
    def generate(cls, key_id: str = "k1") -> "Signer":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: str | Path) -> "Signer":
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        path = Path(path)
        return cls(path.name.removesuffix(".pem"), load_pem_private_key(path.read_bytes(), password=None))

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization
        return self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def save(self, directory: str | Path) -> Path:
        """Write `<key id>.pem` (private, 0600) and `<key id>.pub.pem` into `directory`."""
        from cryptography.hazmat.primitives import serialization
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        private = directory / f"{self.key_id}.pem"
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        (directory / f"{self.key_id}.pub.pem").write_bytes(self.public_pem())
        return private

    def sign(self, actor: Actor, *, application_id: str, action: str,
             now: Optional[datetime] = None) -> Credential:
        unsigned = Credential(key_id=self.key_id, user=actor.user, role=actor.role, bureau=actor.bureau,
                              application_id=application_id, action=action,
                              issued_at=(now or datetime.now(timezone.utc)).astimezone(timezone.utc),
                              signature="-")
        sig = self._key.sign(unsigned.claims())
        return unsigned.model_copy(update={"signature": base64.urlsafe_b64encode(sig).decode()})


class Verifier:
    """The public keys a worker accepts, by key id."""

    def __init__(self, keys: dict[str, object], max_age: timedelta = MAX_AGE) -> None:
        self.keys = dict(keys)
        self.max_age = max_age

    @classmethod
    def from_directory(cls, directory: str | Path) -> "Verifier":
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        keys = {}
        for path in sorted(Path(directory).glob("*.pub.pem")):
            keys[path.name.removesuffix(".pub.pem")] = load_pem_public_key(path.read_bytes())
        return cls(keys)

    @classmethod
    def of(cls, *signers: Signer, max_age: timedelta = MAX_AGE) -> "Verifier":
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        return cls({s.key_id: load_pem_public_key(s.public_pem()) for s in signers}, max_age)

    def verify(self, cred: Optional[Credential], *, application_id: str, actions: tuple[str, ...],
               now: datetime, max_age: Optional[timedelta] = None) -> Credential:
        """The credential, if it is signed by a known key for this application and action, and
        fresh; else CredentialError naming what is wrong."""
        if cred is None:
            raise CredentialError("no credential: decisions are made through the console or the CLI, "
                                  "which sign them for the person who logged in")
        key = self.keys.get(cred.key_id)
        if key is None:
            raise CredentialError(f"credential signed with an unknown key {cred.key_id!r}")
        try:
            key.verify(base64.urlsafe_b64decode(cred.signature.encode()), cred.claims())
        except Exception:  # noqa: BLE001 - InvalidSignature, bad base64: the same answer
            raise CredentialError("credential signature does not verify") from None
        if cred.application_id != application_id:
            raise CredentialError(f"credential is for {cred.application_id}, not this application")
        if cred.action not in actions:
            raise CredentialError(f"credential is for {cred.action!r}, not {' / '.join(actions)}")
        max_age = max_age or self.max_age
        age = now - cred.issued_at
        if age > max_age or age < -timedelta(minutes=2):
            raise CredentialError(f"credential issued at {cred.issued_at.isoformat()} is stale or from the "
                                  "future; sign again")
        return cred


_verifier: Optional[Verifier] = None
_signer: Optional[Signer] = None


def key_directory() -> Path:
    return Path(os.environ.get("DISBURSE_VERIFY_KEYS") or DEFAULT_KEY_DIR)


def verifier() -> Verifier:
    """The worker's key set (loaded once per process; `use_verifier` sets it explicitly)."""
    global _verifier
    if _verifier is None:
        _verifier = Verifier.from_directory(key_directory())
    return _verifier


def use_verifier(v: Optional[Verifier]) -> None:
    global _verifier
    _verifier = v


def signer() -> Signer:
    """The service's signing key: DISBURSE_SIGNING_KEY, else the newest key under var/keys/."""
    global _signer
    if _signer is None:
        path = os.environ.get("DISBURSE_SIGNING_KEY")
        if not path:
            found = sorted(DEFAULT_KEY_DIR.glob("*.pem"), key=lambda p: p.stat().st_mtime)
            found = [p for p in found if not p.name.endswith(".pub.pem")]
            if not found:
                raise CredentialError("no signing key: set DISBURSE_SIGNING_KEY, or run `disburse keys create`")
            path = found[-1]
        _signer = Signer.from_file(path)
    return _signer


def use_signer(s: Optional[Signer]) -> None:
    global _signer
    _signer = s


def ensure_local_keys(directory: Path = DEFAULT_KEY_DIR) -> Path:
    """The embedded setup's key pair (var/keys/k1.pem and k1.pub.pem), created if missing."""
    existing = [p for p in directory.glob("*.pem") if not p.name.endswith(".pub.pem")] if directory.exists() else []
    if existing:
        return existing[0]
    return Signer.generate("k1").save(directory)
