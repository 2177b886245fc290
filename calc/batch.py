"""Many claims at once, on every core: apply-free matching over a whole registry.

    from calc.batch import evaluate_many, award
    results = evaluate_many(requests)                      # CalcResult (or InputError) per request
    awards = evaluate_many(requests, summary=award)        # (clause_id, amount, refusal code) per request

`requests` is a sequence of validated `CalcRequest`s (validate at the door: `parse_request`, or
the registry's own checks). Each is evaluated exactly as `calculate(req)` would (same amount, same
trace), in its own worker process; the results come back in input order. A request that
`calculate` would refuse with an InputError (a fact its clause needs is missing) gives that
InputError in its place: one bad claim does not stop the batch.

`summary` (a module-level function, CalcResult -> anything picklable) is applied in the worker:
shipping a whole CalcResult with its trace back to the parent costs more than computing it, so
a batch that needs only the amounts should say so (`award`). The trace is computed either way.

`processes`: worker processes (default: every core, `os.cpu_count()`); 1 (or a batch smaller than
one chunk) evaluates in this process, with no pool. `chunksize`: requests per task.

Claims of the same enterprise that share their `prior_awards` tuple (e.g. built with
`model_copy`) share one AwardHistory index within a chunk: the history is indexed once, not per
clause.

On Linux the workers are forked, and read the requests from the parent's memory (only index
ranges and results cross between processes); elsewhere the requests are pickled to the workers
chunk by chunk. Call it from a process that runs no other threads (the command line, a script), not
from inside a Temporal worker.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from typing import Any, Callable, Sequence

from calc.catalogue import catalogue
from calc.engine import calculate
from calc.errors import InputError
from calc.history import AwardHistory
from calc.model import CalcRequest, CalcResult

CHUNK = 512


def award(result: CalcResult) -> tuple[str, Decimal, str | None]:
    """A summary for matching: the clause, the amount it pays, the refusal code (None if it pays)."""
    fields = result.__dict__    # one attribute read, not three (a pydantic model's fields: calc/context.py, Ctx)
    refusal = fields["refusal"]
    return fields["clause_id"], fields["amount"], refusal.code if refusal is not None else None


def _whole(result: CalcResult) -> CalcResult:
    return result


def _evaluate_chunk(requests: Sequence[CalcRequest], summary: Callable[[CalcResult], Any]) -> list[Any]:
    out: list[Any] = []
    awards: Any = None
    history: AwardHistory | None = None
    for req in requests:
        if req.prior_awards is not awards:            # the same enterprise's claims: one index
            awards, history = req.prior_awards, AwardHistory.of(req.prior_awards)
        try:
            out.append(summary(calculate(req, history)))
        except InputError as e:
            out.append(e)
    return out


_SHARED: Sequence[CalcRequest] = ()   # the requests, inherited by forked workers


def _evaluate_range(bounds: tuple[int, int], summary: Callable[[CalcResult], Any]) -> list[Any]:
    return _evaluate_chunk(_SHARED[bounds[0]:bounds[1]], summary)


def _evaluate_pickled(requests: list[CalcRequest], summary: Callable[[CalcResult], Any]) -> list[Any]:
    return _evaluate_chunk(requests, summary)


def evaluate_many(requests: Sequence[CalcRequest], processes: int | None = None, *,
                  summary: Callable[[CalcResult], Any] | None = None, chunksize: int = CHUNK) -> list[Any]:
    """Evaluate every request (as `calculate`), on `processes` worker processes (default: every
    core); results (or `summary(result)`, or the InputError) in input order."""
    global _SHARED
    summary = summary or _whole
    n = len(requests)
    processes = processes or os.cpu_count() or 1
    if chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    if processes <= 1 or n <= chunksize:
        return _evaluate_chunk(requests, summary)
    catalogue()                                   # loaded once, before the workers fork
    bounds = [(i, min(i + chunksize, n)) for i in range(0, n, chunksize)]
    out: list[Any] = []
    if "fork" in multiprocessing.get_all_start_methods():
        _SHARED = requests
        try:
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                for part in pool.map(_evaluate_range, bounds, [summary] * len(bounds)):
                    out.extend(part)
        finally:
            _SHARED = ()
    else:
        with ProcessPoolExecutor(processes) as pool:
            chunks = [list(requests[a:b]) for a, b in bounds]
            for part in pool.map(_evaluate_pickled, chunks, [summary] * len(chunks)):
                out.extend(part)
    return out
