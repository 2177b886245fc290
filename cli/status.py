"""`disburse status APP_ID [--json] [--trace]`: where an application stands. One implementation
for the typer command (cli/main.py) and the console script's quick path (cli/entry.py), so both
ask the same questions and print the same thing; light to import (no typer, no pydantic)."""
from __future__ import annotations


def show(app_id: str, as_json: bool = False, trace: bool = False) -> None:
    """Ask the status query (and, with --trace, the calculation) and print it: a table, or JSON.
    Asked over Temporal's HTTP API when TEMPORAL_HTTP_ADDRESS is set (backend.http_status: no
    Temporal SDK at all), else — or when that cannot answer exactly — on the SDK's service layer
    (backend.quick_status), unless --trace or an answer the service layer cannot read (encrypted
    payloads) needs the full client and its data converter. The same answer, the same printer."""
    from cli import backend
    meanwhile = None if as_json else _load_tables
    st = calculation = None
    if not trace:
        st = backend.http_status(app_id, meanwhile=meanwhile)
        if st is None:
            import asyncio
            st = asyncio.run(backend.quick_status(app_id, meanwhile=meanwhile))
    if st is None:
        import asyncio

        async def fetch():            # one connection for both queries
            client = await backend.connect()
            return (await backend.status(client, app_id),
                    await backend.calculation(client, app_id) if trace else None)
        st, calculation = (backend.to_plain(x) for x in asyncio.run(fetch()))
    if as_json:
        from cli.terminal import print_json
        print_json({**st, "trace": calculation} if trace else st)
        return
    from cli import show as shown
    from cli.terminal import console
    shown.application(console, st, calculation)


def _load_tables() -> None:
    """Import what draws the tables (rich, ~0.04 s) while the query is on its way."""
    from cli import show  # noqa: F401
