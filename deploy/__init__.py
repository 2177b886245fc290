"""Local deployment helpers: the embedded Temporal dev server (deploy/devserver.py)."""
