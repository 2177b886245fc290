"""workflows/code_cache.py: the sandbox imports the workflow module afresh for every workflow
instance; without a bytecode cache (PYTHONDONTWRITEBYTECODE, a read-only image) each instance
compiled workflows/application.py from source (~50 ms of CPU). With the finder installed, a
worker compiles it once."""
from __future__ import annotations

import asyncio
import importlib._bootstrap_external as bootstrap
import os
import sys
from pathlib import Path

from temporalio.worker import Replayer

from workflows import code_cache
from workflows.application import ApplicationWorkflow
from workflows.codec import data_converter

APPLICATION = str(Path(code_cache.__file__).with_name("application.py"))
HISTORY = Path(__file__).parent / "histories" / "rejected-v5-lean2.json"


def _replay_three_times() -> None:
    from tests.test_replay import _history
    replayer = Replayer(workflows=[ApplicationWorkflow], data_converter=data_converter())

    async def go():
        for _ in range(3):                                   # each replay: a new workflow instance
            result = await replayer.replay_workflow(_history(HISTORY), raise_on_replay_failure=False)
            assert result.replay_failure is None, result.replay_failure
    asyncio.run(go())


def test_a_worker_compiles_the_workflow_module_once_not_per_workflow_instance(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)   # as PYTHONDONTWRITEBYTECODE=1 ...
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))   # ... with no cached bytecode to read
    compiled: list[str] = []
    source_to_code = bootstrap.SourceLoader.source_to_code

    def spy(self, data, path, *, _optimize=-1):
        compiled.append(path)
        return source_to_code(self, data, path, _optimize=_optimize)
    monkeypatch.setattr(bootstrap.SourceLoader, "source_to_code", spy)

    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, code_cache.KeptCodeFinder)])
    _replay_three_times()
    assert compiled.count(APPLICATION) >= 3                 # Python's own loader: at least once per instance

    compiled.clear()
    code_cache.install()                                    # (into the list monkeypatch restores)
    _replay_three_times()
    assert compiled.count(APPLICATION) <= 1                 # the first, unless a test before compiled it
    assert code_cache.compiled() >= 1


def test_an_edited_workflow_module_is_compiled_again(tmp_path, monkeypatch):
    """The kept code is that of one version of the file (path, modification time, size)."""
    package = tmp_path / "workflows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "probe.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "cache"))
    from importlib.util import module_from_spec

    finder = code_cache.KeptCodeFinder()

    def load() -> int:
        spec = finder.find_spec("workflows.probe", [str(package)])
        assert spec is not None and type(spec.loader).__name__ == "_KeptCodeLoader"
        mod = module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.VALUE

    assert load() == 1
    first = spec_code = finder.find_spec("workflows.probe", [str(package)]).loader.get_code("workflows.probe")
    assert finder.find_spec("workflows.probe", [str(package)]).loader.get_code("workflows.probe") is spec_code
    module.write_text("VALUE = 22\n")
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert load() == 22
    assert finder.find_spec("workflows.probe", [str(package)]).loader.get_code("workflows.probe") is not first


def test_the_finder_leaves_other_packages_to_python():
    assert code_cache.KeptCodeFinder().find_spec("models.application") is None
    assert code_cache.KeptCodeFinder().find_spec("json") is None


def test_the_worker_installs_the_finder(monkeypatch):
    import worker
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, code_cache.KeptCodeFinder)])
    monkeypatch.setattr(worker, "Worker", lambda *a, **kw: kw)
    built = worker.build_worker(None, executor=None, concurrency=worker.Concurrency())
    assert ApplicationWorkflow in built["workflows"]
    assert isinstance(sys.meta_path[0], code_cache.KeptCodeFinder)
