"""Benchmark of the command line: wall-clock time from starting the process to its first output,
for `disburse --help` and `disburse status APP_ID`, next to Temporal's own CLI doing the same
(`temporal --help`; `temporal workflow query --type status`, the same query against the same
application), and next to the floor of any status that asks through the Python SDK (`python -c
"import temporalio"`), in interleaved runs so all see the same machine load.

`disburse status ID` runs as `disburse up` sets it up: its dev server with an HTTP API, and
TEMPORAL_HTTP_ADDRESS naming it (on its free ports; `make run`'s 7233/7243 pair needs no setting),
so the status is asked over the HTTP API without the SDK (workflows/http_status.py); `disburse
status ID (gRPC)` is the same command with TEMPORAL_HTTP_ADDRESS=off: over gRPC, through the SDK,
as wherever the HTTP API is not at hand.

It starts its own Temporal dev server on free ports and a worker (`disburse worker`), registers an
operator and two reviewers, imports the example enterprise registry and submits the example
application, so `status` asks the worker for a real application in review. All state lives in a
temporary directory, removed at the end; nothing touches var/ or a running `make run`.

    .venv/bin/python bench/cli.py [--runs 15] [--compare DIR]

--compare DIR also times the `disburse` of another checkout of the project (e.g. `git worktree add
/tmp/before main`, or `git archive main | tar -x -C /tmp/before`): its console script's entry point
(its pyproject.toml), run with this virtualenv's Python and PYTHONPATH=DIR, in the same rounds.

Target (issue 11): `disburse --help` and `disburse status` ≤ 0.3 s to first output.
"""
from __future__ import annotations

import argparse
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cli_env import TOUR, people, stop_process  # noqa: E402

BIN = Path(sys.executable).parent
DISBURSE = str(BIN / "disburse")
EXAMPLE = ROOT / "examples" / "hz2025-04-tech-insurance-premium.json"
TARGET = 0.3                   # seconds to first output
FLOOR = "python: import temporalio"
STATUS, STATUS_GRPC = "disburse status ID", "disburse status ID (gRPC)"


def first_output(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, int]:
    """(seconds to the first byte on stdout or stderr, seconds to exit, CPU seconds (user + system),
    exit code) of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = None
    with selectors.DefaultSelector() as sel:
        for f in (proc.stdout, proc.stderr):
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                elif first is None:
                    first = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return (first if first is not None else total), total, usage.ru_utime + usage.ru_stime, code


def entry_point(checkout: Path) -> tuple[str, str]:
    """(module, function) of the `disburse` console script of another checkout (its pyproject.toml)."""
    import tomllib
    script = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["scripts"]["disburse"]
    module, func = script.split(":")
    return module, func


def run_ok(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"bench/cli.py: setup failed: {' '.join(map(str, cmd[1:4]))}: {r.stderr.strip()}")
    return r.stdout


def start_stack(tmp: Path) -> tuple[dict[str, str], list[subprocess.Popen], int]:
    """Dev server (with its HTTP API) + worker on free ports; the environment for the CLI."""
    from deploy.devserver import free_port
    port, ui_port, http_port = free_port(), free_port(), free_port()
    from models.credentials import Signer
    private = Signer.generate("bench").save(tmp / "keys")             # the signing service's key pair
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "TEMPORAL_HTTP_ADDRESS": f"127.0.0.1:{http_port}",
           "DISBURSE_DB_URL": f"sqlite:///{tmp / 'disburse.db'}", "PYTHONUNBUFFERED": "1",
           "DISBURSE_SIGNING_KEY": str(private), "DISBURSE_VERIFY_KEYS": str(tmp / "keys"),
           "DISBURSE_CONFIG_DIR": str(tmp / "config"), "DISBURSE_CONSOLE_PORT": "0"}
    # PYTHONDONTWRITEBYTECODE off: an installed `disburse` runs from its bytecode cache, as measured here
    for name in list(env):
        if name in ("DISBURSE_DEBUG", "DISBURSE_TOKEN", "DISBURSE_PAYLOAD_KEYS", "TEMPORAL_PROFILE", "TEMPORAL_API_KEY",
                    "TEMPORAL_NAMESPACE", "PYTHONDONTWRITEBYTECODE") or name.startswith(("TEMPORAL_TLS", "TEMPORAL_GRPC_META_")):
            env.pop(name, None)
    env["TEMPORAL_CONFIG_FILE"] = str(tmp / "no-temporal-profile.toml")    # nobody's profile
    procs = []
    server = subprocess.Popen(
        [sys.executable, "-m", "deploy.devserver", "--port", str(port), "--ui-port", str(ui_port),
         "--http-port", str(http_port), "--db-file", str(tmp / "temporal.db")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(server)
    line = server.stdout.readline()
    if "started" not in line:
        raise SystemExit(f"bench/cli.py: the dev server did not start: {line or server.stderr.read()}")
    worker = subprocess.Popen([DISBURSE, "worker"], cwd=tmp, env=env, stdout=open(tmp / "worker.log", "w"),
                              stderr=subprocess.STDOUT)
    procs.append(worker)
    return env, procs, port


def submit_application(env: dict[str, str], tmp: Path) -> str:
    people(env, tmp, *TOUR)
    run_ok([DISBURSE, "enterprises", "import", str(ROOT / "examples" / "enterprises.csv")], env, tmp)
    out = run_ok([DISBURSE, "submit", str(EXAMPLE), "--operator", "op-1"], env, tmp)
    return out.split("submitted", 1)[1].split()[0].strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15, help="runs of each command (median reported)")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="also time the disburse of this checkout")
    args = ap.parse_args()
    temporal = str(BIN / "temporal")
    with tempfile.TemporaryDirectory(prefix="disburse-bench-cli-") as d:
        tmp = Path(d)
        env, procs, port = start_stack(tmp)
        try:
            app_id = submit_application(env, tmp)
            address = f"127.0.0.1:{port}"
            grpc_env = {**env, "TEMPORAL_HTTP_ADDRESS": "off"}
            commands = {
                "disburse --help": ([DISBURSE, "--help"], env),
                "temporal --help": ([temporal, "--help"], env),
                STATUS: ([DISBURSE, "status", app_id], env),
                STATUS_GRPC: ([DISBURSE, "status", app_id], grpc_env),
                "temporal workflow query": ([temporal, "workflow", "query", "--address", address,
                                             "--workflow-id", app_id, "--type", "status"], env),
                # the floor of any `disburse status` that asks through the SDK: Python starting and
                # `import temporalio` (which loads temporalio.service: every protobuf module, the bridge)
                FLOOR: ([sys.executable, "-c", "import temporalio; print()"], env),
            }
            if args.compare:
                module, func = entry_point(args.compare)
                other = [sys.executable, "-c", f"import sys; sys.argv[0] = 'disburse'; from {module} import {func}; {func}()"]
                other_env = {**env, "PYTHONPATH": str(args.compare.resolve())}
                commands[f"{args.compare.name}: --help"] = (other + ["--help"], other_env)
                commands[f"{args.compare.name}: status ID"] = (other + ["status", app_id], other_env)
            for cmd, cmd_env in commands.values():  # warm up: page cache, bytecode cache, the worker's cache
                *_, code = first_output(cmd, cmd_env, tmp)
                if code != 0:
                    raise SystemExit(f"bench/cli.py: {' '.join(cmd[:3])} ... exits {code}")
            same = {name: subprocess.run(commands[name][0], cwd=tmp, env=commands[name][1], capture_output=True,
                                         timeout=120).stdout for name in (STATUS, STATUS_GRPC)}
            if same[STATUS] != same[STATUS_GRPC]:
                raise SystemExit("bench/cli.py: status over the HTTP API and over gRPC print different things")
            times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}
            load_before = os.getloadavg()[0]
            began = time.monotonic()
            for _ in range(args.runs):                             # interleaved: the same load for all
                for name, (cmd, cmd_env) in commands.items():
                    *measured, code = first_output(cmd, cmd_env, tmp)
                    if code != 0:
                        raise SystemExit(f"bench/cli.py: {name} exits {code}")
                    times[name].append(tuple(measured))
            span = time.monotonic() - began
            load_after = os.getloadavg()[0]
        finally:
            for p in reversed(procs):
                stop_process(p)

    def med(name: str, i: int = 0) -> float:
        return statistics.median(t[i] for t in times[name])

    print(f"disburse CLI benchmark · {args.runs} runs of each command, interleaved over {span:.0f} s · "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} → {load_after:.1f}")
    print(f"application {app_id} (in review), dev server and worker started by the benchmark; "
          "bytecode cache on")
    print(f"{'':30} {'first output':>12} {'min':>7} {'max':>7} {'exit':>7} {'cpu':>7}   (seconds, median unless said)")
    for name in commands:
        firsts = [t[0] for t in times[name]]
        print(f"  {name:28} {med(name):12.3f} {min(firsts):7.3f} {max(firsts):7.3f} {med(name, 1):7.3f} "
              f"{med(name, 2):7.3f}")
    print(f"  ({STATUS}: TEMPORAL_HTTP_ADDRESS set: the HTTP API, no SDK; "
          f"{STATUS_GRPC}: TEMPORAL_HTTP_ADDRESS=off)")
    verdicts = []
    for ours, theirs in (("disburse --help", "temporal --help"), (STATUS, "temporal workflow query")):
        met = med(ours) <= TARGET
        verdicts.append(met)
        print(f"  {ours} / {theirs}: {med(ours) / med(theirs):.2f}× to first output, "
              f"{med(ours, 2) / med(theirs, 2):.2f}× in CPU; {ours} {med(ours):.3f} s: "
              f"target ≤ {TARGET} s {'MET' if met else 'NOT MET'}")
    print(f"  of {STATUS_GRPC}'s {med(STATUS_GRPC):.3f} s, {med(FLOOR):.3f} s are Python starting and "
          f"importing the Temporal SDK ({FLOOR}), {med(STATUS_GRPC) - med(FLOOR):.3f} s the rest; "
          f"over the HTTP API {med(STATUS):.3f} s ({med(STATUS_GRPC) - med(STATUS):.3f} s less)")
    print(f"target ≤ {TARGET} s to first output for --help and status: {'MET' if all(verdicts) else 'NOT MET'}")
    cpus = os.cpu_count() or 1
    if max(load_before, load_after) > cpus:
        print(f"  the machine was busy (load average {max(load_before, load_after):.1f} on {cpus} CPUs): the "
              "times to first output are inflated by waiting for a CPU; the cpu column much less so. "
              "Rerun on a quiet machine for the verdict.")


if __name__ == "__main__":
    main()
