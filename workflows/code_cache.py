"""Workflow modules compiled once per worker process.

Temporal's workflow sandbox imports the module that defines a workflow afresh for every workflow
instance it creates: for each new application, and again for each application evicted from the
sticky cache and woken by an event. Python reads that module's code from its bytecode cache
(`__pycache__`), or, when there is no valid cache, compiles the source: about 50 ms of CPU for
workflows/application.py, where loading the cached bytecode takes 2 ms. There is no valid cache
wherever bytecode is not written, which is the usual setting of containers
(PYTHONDONTWRITEBYTECODE=1, as in deploy/Dockerfile; a read-only image) and the setting of this
project's development machines. Every new application then paid the compilation: a quarter of
the worker's samples in a py-spy profile of bench.lifecycle, and under a burst of openings the
first workflow tasks waited behind it (bench/instance.py measures the cost per instance).

`install()` puts a finder in front of `sys.meta_path` for the `workflows` package alone. Its loader
is Python's own source loader, with the code it returns kept in memory for the life of the process,
keyed by the file's path, modification time and size: an edited module is compiled again; nothing
is written to disk (PYTHONDONTWRITEBYTECODE is respected). A code object is immutable, and each
import still executes it in a fresh module, so the sandbox's isolation is unchanged.

Installed by the worker (worker.build_worker) and, for the same behaviour, by the tests
(tests/conftest.py)."""
from __future__ import annotations

import os
import sys
import threading
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType

PACKAGES = frozenset({"workflows"})
_codes: dict[tuple[str, int, int], CodeType] = {}
_lock = threading.Lock()


class _KeptCodeLoader(SourceFileLoader):
    """SourceFileLoader whose code for one version of a file (path, mtime, size) is made once."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        code = _codes.get(key)
        if code is None:
            code = super().get_code(fullname)
            if code is None:              # (a source loader always has code; kept for the type)
                raise ImportError(f"no code for {fullname}", name=fullname)
            with _lock:
                for old in [k for k in _codes if k[0] == path]:
                    del _codes[old]       # an edited file's older versions are not needed again
                _codes[key] = code
        return code


class KeptCodeFinder(MetaPathFinder):
    """Finds the modules of PACKAGES as Python would, and loads them with _KeptCodeLoader."""

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in PACKAGES:
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader:
            return spec
        spec.loader = _KeptCodeLoader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    """Idempotent: the finder goes first in sys.meta_path, once per process."""
    with _lock:
        if not any(isinstance(f, KeptCodeFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, KeptCodeFinder())


def compiled() -> int:
    """How many module versions are kept (for tests)."""
    return len(_codes)
