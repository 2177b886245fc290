"""Evidence files (loan contracts, interest statements, insurance policies and premium invoices,
investment agreements), stored once under their SHA-256 (documents/store.py), their type decided
by their bytes (documents/types.py), attached to applications in the `document` table
(documents/records.py)."""
from documents.errors import DocumentCorrupt, DocumentError, DocumentNotFound, SettingsError
from documents.names import MAX_FILENAME, sanitize_filename
from documents.records import PURPOSES, attach, documents_of
from documents.store import LocalStore, S3Store, StoredDocument, exists, get, max_bytes, put, store

__all__ = [
    "DocumentCorrupt", "DocumentError", "DocumentNotFound", "SettingsError", "MAX_FILENAME", "PURPOSES", "attach",
    "documents_of", "sanitize_filename", "LocalStore", "S3Store", "StoredDocument", "exists", "get", "max_bytes",
    "put", "store",
]
