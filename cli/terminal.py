"""The commands' output: the rich Console (made when first used) and JSON. Light to import: the
console script's `disburse status` (cli/entry.py) prints through it without loading typer."""
from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Optional

from cli.safe_text import json_text

if TYPE_CHECKING:
    from rich.console import Console


class _Console:
    """The commands' rich Console, made when something is first asked of it: rich is not imported
    for `--help`, nor for a command that fails before it prints. Piped or captured output gets wide
    tables instead of columns squeezed to nothing. Stands in for the Console everywhere, also where
    rich takes one (`Progress(console=console)` enters it as a context manager)."""
    _real: Optional[Console] = None

    def _made(self) -> Console:
        if _Console._real is None:
            from rich.console import Console
            _Console._real = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
        return _Console._real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._made().__exit__(*exc)


console = _Console()


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout, every character unsafe on a terminal escaped (json_text).
    What typer.echo did with it: the text and a newline, flushed (there is no ANSI to strip)."""
    sys.stdout.write(json_text(json.dumps(data, ensure_ascii=False, indent=2, default=str)) + "\n")
    sys.stdout.flush()
