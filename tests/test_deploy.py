"""The production topologies in deploy/, checked with what runs here (no Docker engine, no cluster):

- deploy/compose: the compose file against the Compose Specification's JSON schema (the copy
  check-jsonschema ships), raw and with example.env's values interpolated, then its structure:
  services, start order, restart policies, healthchecks, the workers' settings, every file it
  mounts; `docker compose config` too where the compose plugin is installed;
- deploy/Dockerfile: base, non-root user, `disburse worker` as the default command, and an image's
  file tree assembled from its COPY lines imports, loads the policies and migrates a database;
- deploy/k8s: every manifest (and `kubectl kustomize`'s output, where kubectl is installed)
  against the Kubernetes JSON schemas kubernetes-validate ships, strictly, then how they fit
  together (probes, resources, non-root, HPA -> Deployment, PDB -> pods, ConfigMap/Secret);
  temporal-values.yaml for the Helm chart: PostgreSQL for both stores, the Web UI on;
- deploy/systemd: `systemd-analyze verify` on an instance of the template unit.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
K8S = DEPLOY / "k8s"
ONE_SHOT = {"temporal-schema", "temporal-namespace", "register-attributes"}
LONG_RUNNING = {"postgresql", "temporal", "worker", "temporal-ui", "prometheus", "grafana"}
K8S_VERSION = "1.33.0"     # a Kubernetes version kubernetes-validate ships schemas for


# ------------------------------------------------------------------------------------ compose

def example_env() -> dict[str, str]:
    env = {}
    for line in (COMPOSE_DIR / "example.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


_VAR = re.compile(r"\$(?:\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+)|(?P<dollar>\$))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    def sub(m: re.Match) -> str:
        if m.group("dollar"):
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            if op and op.endswith("?"):
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return arg if op and op.endswith("-") else ""
        return value
    return _VAR.sub(sub, text)


def compose(env: dict[str, str] | None = None) -> dict:
    text = COMPOSE.read_text()
    return yaml.safe_load(interpolate(text, env) if env is not None else text)


def compose_schema() -> dict:
    import importlib.resources
    import json
    ref = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(ref.read_text(encoding="utf-8"))


def _validate(doc: dict, schema: dict) -> list[str]:
    import jsonschema
    cls = jsonschema.validators.validator_for(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in cls(schema).iter_errors(doc)]


def test_the_compose_file_is_valid_against_the_compose_specification():
    schema = compose_schema()
    assert _validate(compose(), schema) == []
    assert _validate(compose(example_env()), schema) == []
    # and it has teeth: a misspelt key, a condition that does not exist, a list for a number
    c = compose(example_env())
    c["services"]["worker"]["healthchek"] = c["services"]["worker"].pop("healthcheck")
    c["services"]["temporal"]["depends_on"]["temporal-schema"]["condition"] = "service_done"
    c["services"]["worker"]["deploy"]["replicas"] = [3]
    assert len(_validate(c, schema)) >= 3


def test_compose_services_start_in_order_and_restart():
    c = compose(example_env())
    services = c["services"]
    assert ONE_SHOT | LONG_RUNNING == set(services)
    assert {s for s, d in services.items() if "monitoring" in d.get("profiles", [])} == {"prometheus", "grafana"}
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    for name in ONE_SHOT:
        assert services[name]["restart"].startswith("on-failure"), f"{name} is one-shot: unless-stopped would loop"

    def after(name: str) -> dict:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}
    assert after("temporal-schema") == {"postgresql": "service_healthy"}
    assert after("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert after("temporal-namespace") == {"temporal": "service_healthy"}
    assert after("register-attributes") == {"temporal-namespace": "service_completed_successfully"}
    assert after("worker") == {"postgresql": "service_healthy", "register-attributes": "service_completed_successfully"}
    assert after("temporal-ui") == {"temporal": "service_healthy"}


def test_compose_temporal_keeps_persistence_and_visibility_on_postgresql():
    t = compose(example_env())["services"]["temporal"]
    env = t["environment"]
    assert t["image"].startswith("temporalio/server:")
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgresql"
    assert env["DBNAME"] != env["VISIBILITY_DBNAME"]
    assert "ENABLE_ES" not in env, "visibility stays on PostgreSQL"
    dyn = Path(env["DYNAMIC_CONFIG_FILE_PATH"]).name
    mount = next(v for v in t["volumes"] if v.split(":")[1] == "/etc/temporal/config/dynamicconfig")
    config = yaml.safe_load((COMPOSE_DIR / mount.split(":")[0] / dyn).read_text())
    assert config["frontend.enableUpdateWorkflowExecution"][0]["value"] is True
    ui = compose(example_env())["services"]["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:") and ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_compose_workers_settings_image_and_scale():
    import worker as worker_module

    services = compose(example_env())["services"]
    w = services["worker"]
    env = {k: str(v) for k, v in w["environment"].items()}
    assert w["command"] == ["worker"]
    assert (COMPOSE_DIR / w["build"]["context"]).resolve() == ROOT
    assert (COMPOSE_DIR / w["build"]["context"] / w["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert w["image"] == services["register-attributes"]["image"]
    assert int(w["deploy"]["replicas"]) >= 2
    assert w["deploy"]["resources"]["limits"]["memory"]
    # the database: disburse's own, on the postgresql service, with the driver the image installs
    url = env["DISBURSE_DB_URL"]
    assert re.fullmatch(r"postgresql\+psycopg://disburse:[^@]+@postgresql:5432/disburse", url), url
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233" and env["TEMPORAL_NAMESPACE"]
    # every concurrency setting is one the worker reads, with the value given
    c = worker_module.Concurrency.from_env(env)
    assert (c.workflow_tasks, c.activities, c.activity_threads, c.cached_workflows) == tuple(
        int(env[k]) for k in ("DISBURSE_MAX_CONCURRENT_WORKFLOW_TASKS", "DISBURSE_MAX_CONCURRENT_ACTIVITIES",
                              "DISBURSE_ACTIVITY_THREADS", "DISBURSE_MAX_CACHED_WORKFLOWS"))
    # the healthcheck and Prometheus both use the worker's metrics port
    port = env["DISBURSE_METRICS_PORT"]
    assert f":{port}/metrics" in " ".join(w["healthcheck"]["test"]) and str(port) in map(str, w["expose"])
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "disburse-worker")
    assert job["dns_sd_configs"][0]["names"] == ["worker"] and str(job["dns_sd_configs"][0]["port"]) == port
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_compose_register_attributes_runs_the_cli_command_against_the_same_cluster():
    from cli.main import app
    services = compose(example_env())["services"]
    r = services["register-attributes"]
    assert r["command"][0] == "register-attributes"
    assert "register-attributes" in {c.name for c in app.registered_commands}
    assert r["environment"]["TEMPORAL_ADDRESS"] == services["worker"]["environment"]["TEMPORAL_ADDRESS"]
    assert r["environment"]["TEMPORAL_NAMESPACE"] == services["temporal-namespace"]["environment"]["TEMPORAL_NAMESPACE"]


def test_compose_mounts_exist_and_required_variables_are_in_example_env():
    services = compose(example_env())["services"]
    for name, s in services.items():
        for v in s.get("volumes", []):
            source = v.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} is missing"
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required and required <= set(example_env())
    for script in (COMPOSE_DIR / "scripts").glob("*.sh"):
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script
    assert subprocess.run(["sh", "-n", str(COMPOSE_DIR / "postgres" / "10-disburse-db.sh")]).returncode == 0
    grafana = yaml.safe_load((COMPOSE_DIR / "grafana" / "datasources.yml").read_text())
    assert grafana["datasources"][0]["url"] == "http://prometheus:9090"


def _docker_compose() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]):
            r = subprocess.run([*cmd, "version"], capture_output=True, text=True)
            if r.returncode == 0 and "version" in r.stdout.lower() and "v1." not in r.stdout:
                return cmd
    return None


def test_docker_compose_config_accepts_it():
    cmd = _docker_compose()
    if cmd is None:
        pytest.skip("no Docker Compose v2 here (`docker compose` plugin or docker-compose v2): "
                    "the JSON-schema test above stands in for `docker compose config`")
    r = subprocess.run([*cmd, "-f", str(COMPOSE), "--profile", "monitoring", "config", "--quiet"],
                       cwd=COMPOSE_DIR, env={**os.environ, **example_env()}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------ Dockerfile

def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _copied() -> list[str]:
    sources = []
    for word, rest in dockerfile():
        if word == "COPY" and "--from" not in rest:
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def test_the_dockerfile_runs_disburse_worker_as_a_non_root_user():
    import json
    lines = dockerfile()
    assert lines[0][0] == "FROM" and lines[0][1].startswith("python:3.11")
    user = [rest for word, rest in lines if word == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and int(user[-1].split(":")[0]) != 0
    last_user_at = max(i for i, (w, _) in enumerate(lines) if w == "USER")
    assert not any(w == "RUN" for w, _ in lines[last_user_at:]), "nothing runs as root after USER"
    entry = json.loads(next(r for w, r in lines if w == "ENTRYPOINT"))
    cmd = json.loads(next(r for w, r in lines if w == "CMD"))
    assert entry + cmd == ["disburse", "worker"]
    assert "9464" in [r for w, r in lines if w == "EXPOSE"]
    assert any("postgres" in r for w, r in lines if w == "RUN"), "the PostgreSQL driver is installed"
    assert "postgres" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_dockerfile_copies_every_package_and_the_data_they_read():
    copied = {s.rstrip("/") for s in _copied()}
    for s in copied:
        assert (ROOT / s).exists(), f"COPY {s}: no such path"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]}
    assert packages | modules | {"policies", "migrations", "pyproject.toml", "README.md"} <= copied
    ignored = [p.strip() for p in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    import fnmatch
    for s in copied:
        for pattern in ignored:
            assert not fnmatch.fnmatch(s, pattern.removeprefix("**/")), f"{s} is copied but ignored by {pattern}"


def test_an_image_tree_assembled_from_the_copy_lines_works(tmp_path):
    """The files the image gets, and only those, import, find the policies and migrate a database."""
    app = tmp_path / "app"
    app.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for s in _copied():
        src = ROOT / s.rstrip("/")
        if src.is_dir():
            shutil.copytree(src, app / src.name, ignore=ignore)
        else:
            shutil.copy2(src, app / src.name)
    probe = ("import worker, cli.main, calc, models.migrate; "
             "assert worker.__file__.startswith(%r), worker.__file__; "
             "from calc import catalogue; assert catalogue().clause('hz2025-04-tech-insurance-premium'); "
             "from models.db import init_db; init_db(); print('ok')") % str(app)
    r = subprocess.run([sys.executable, "-c", probe], cwd=app, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(app), "PYTHONDONTWRITEBYTECODE": "1",
                            "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'image.db'}"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


# ------------------------------------------------------------------------------------ Kubernetes

def k8s_docs() -> dict[str, dict]:
    """kind/name -> manifest, from the files kustomization.yaml lists."""
    kz = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = {}
    for f in kz["resources"]:
        for d in yaml.safe_load_all((K8S / f).read_text()):
            if d:
                docs[f"{d['kind']}/{d['metadata']['name']}"] = d
    return docs


def _k8s_errors(doc: dict) -> list[str]:
    import kubernetes_validate
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {'/'.join(map(str, e.path))}: {e.message}"]
    return []


def test_every_kubernetes_manifest_is_valid_against_its_schema():
    kz = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kz["kind"] == "Kustomization" and all((K8S / f).is_file() for f in kz["resources"])
    docs = k8s_docs()
    assert {"Namespace/disburse", "ConfigMap/disburse-config", "Secret/disburse-db", "Deployment/disburse-worker",
            "HorizontalPodAutoscaler/disburse-worker", "PodDisruptionBudget/disburse-worker",
            "Job/disburse-register-attributes"} == set(docs)
    errors = [e for d in docs.values() for e in _k8s_errors(d)]
    assert errors == []


def test_an_invalid_manifest_is_caught():
    """The validation has teeth: a misspelt field and a wrong type are reported."""
    d = k8s_docs()["Deployment/disburse-worker"]
    bad = yaml.safe_load(yaml.safe_dump(d))
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = bad["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    assert _k8s_errors(bad)
    bad = yaml.safe_load(yaml.safe_dump(d))
    bad["spec"]["replicas"] = "two"
    assert _k8s_errors(bad)


def test_kubectl_kustomize_builds_valid_manifests():
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed: the files were validated one by one above")
    r = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    assert len(docs) == 7
    assert [e for d in docs for e in _k8s_errors(d)] == []
    for d in docs:
        assert d["kind"] == "Namespace" or d["metadata"]["namespace"] == "disburse", d["metadata"]
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "disburse"
    images = {c["image"] for d in docs if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1 and images.pop().startswith("registry.example.com/disburse:")


def _pod(d: dict) -> dict:
    return d["spec"]["template"]["spec"]


def test_the_worker_deployment_is_probed_sized_and_unprivileged():
    docs = k8s_docs()
    dep, cm = docs["Deployment/disburse-worker"], docs["ConfigMap/disburse-config"]
    pod = _pod(dep)
    (c,) = pod["containers"]
    assert c["args"] == ["worker"]
    assert {e.get("configMapRef", e.get("secretRef"))["name"] for e in c["envFrom"]} == {"disburse-config", "disburse-db"}
    assert "DISBURSE_DB_URL" in docs["Secret/disburse-db"]["stringData"]
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "DISBURSE_METRICS_PORT"} <= set(cm["data"])
    from worker import Concurrency
    Concurrency.from_env(cm["data"])                       # the settings the pods get are usable
    # probes on the metrics port the worker is told to serve
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == int(cm["data"]["DISBURSE_METRICS_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] in ("metrics", ports["metrics"]), probe
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # non-root, as the image's USER
    uid = int(next(r for w, r in dockerfile() if w == "USER").split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == uid
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # TLS client certificates from a Secret, mounted read-only
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == "disburse-temporal-tls"
    assert any(m["name"] == "tls" and m["readOnly"] for m in c["volumeMounts"])
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_the_hpa_and_pdb_point_at_the_worker_deployment():
    docs = k8s_docs()
    dep, hpa, pdb = (docs[f"{k}/disburse-worker"] for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"))
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", dep["metadata"]["name"])
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable", 0) < hpa["spec"]["minReplicas"] or pdb["spec"].get("minAvailable")


def test_the_register_attributes_job_runs_the_cli_command():
    job = k8s_docs()["Job/disburse-register-attributes"]
    (c,) = _pod(job)["containers"]
    assert c["args"][0] == "register-attributes" and _pod(job)["restartPolicy"] == "OnFailure"
    assert c["envFrom"] == [{"configMapRef": {"name": "disburse-config"}}]
    assert _pod(job)["securityContext"]["runAsNonRoot"] is True


def test_temporal_helm_values_put_both_stores_on_postgresql_with_the_web_ui():
    v = yaml.safe_load((K8S / "temporal-values.yaml").read_text())
    p = v["server"]["config"]["persistence"]
    stores = p["datastores"]
    assert set(stores) == {p["defaultStore"], p["visibilityStore"]}
    sql = [stores[p["defaultStore"]]["sql"], stores[p["visibilityStore"]]["sql"]]
    assert {s["pluginName"] for s in sql} == {"postgres12"}
    assert sql[0]["databaseName"] != sql[1]["databaseName"]
    assert all("password" not in s and s["existingSecret"] for s in sql), "no password in the values file"
    assert v["web"]["enabled"] is True
    assert v["server"]["config"]["namespaces"]["create"] is True
    assert "default" in {n["name"] for n in v["server"]["config"]["namespaces"]["namespace"]}
    assert v["server"]["dynamicConfig"]["frontend.enableUpdateWorkflowExecution"][0]["value"] is True
    assert not any(k in v for k in ("cassandra", "elasticsearch", "mysql", "postgresql")), \
        "chart 1.x bundles no databases: those keys would be ignored"


# ------------------------------------------------------------------------------------ systemd

UNIT = DEPLOY / "systemd" / "disburse-worker@.service"


def test_the_systemd_unit_restarts_the_worker_always():
    text = UNIT.read_text()
    keys = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert keys["Restart"] == "always" and keys["RestartPreventExitStatus"] == "78"
    assert keys["ExecStart"].endswith("/disburse worker") and keys["User"] != "root"
    assert keys["KillSignal"] == "SIGTERM"


def test_systemd_analyze_verifies_an_instance_of_the_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    # verify needs the executable to exist: the same unit with /bin/true in its place
    unit = tmp_path / "disburse-worker@1.service"
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text(), flags=re.M))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


# ------------------------------------------------------------------------------------ scripts, for real

@pytest.mark.devserver
def test_the_namespace_script_creates_the_namespace_once_on_a_real_server():
    """deploy/compose/scripts/temporal-namespace.sh with the temporal CLI of this virtualenv (the
    admin-tools image has the same CLI) against a dev server."""
    import asyncio

    from deploy.devserver import DevServer, free_port, temporal_binary

    server = DevServer(port=free_port(), ui_port=None, db_file=None, headless=True, attributes={})
    server.start()
    try:
        asyncio.run(server.connect(timeout=60))
        env = {**os.environ, "PATH": f"{Path(temporal_binary()).parent}:{os.environ['PATH']}",
               "TEMPORAL_ADDRESS": server.address, "TEMPORAL_NAMESPACE": "disburse-compose", "TEMPORAL_RETENTION": "30d"}
        script = str(COMPOSE_DIR / "scripts" / "temporal-namespace.sh")
        first = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0 and "disburse-compose created (retention 30d)" in first.stdout, first
        again = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "disburse-compose exists" in again.stdout, again
        described = subprocess.run([temporal_binary(), "operator", "namespace", "describe", "--namespace",
                                    "disburse-compose", "--address", server.address, "-o", "json"],
                                   capture_output=True, text=True, timeout=60)
        assert '"workflowExecutionRetentionTtl": "2592000s"' in described.stdout, described.stdout[:2000]
    finally:
        server.stop()


@pytest.mark.devserver
def test_the_worker_probe_and_healthcheck_answer_on_a_real_worker(tmp_path):
    """What the Kubernetes probes (GET /metrics on DISBURSE_METRICS_PORT) and the compose
    healthcheck (its very command) ask of a worker, asked of a real `disburse worker`."""
    import asyncio
    import time
    import urllib.request

    from deploy.devserver import DevServer, free_port

    server = DevServer(port=free_port(), ui_port=None, db_file=None, headless=True, attributes={})
    server.start()
    worker = None
    try:
        asyncio.run(server.connect(timeout=60))
        port = free_port()
        from tests.cli_env import service_env
        env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "DISBURSE_METRICS_PORT": str(port),
               "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'd.db'}", **service_env(tmp_path)}
        worker = subprocess.Popen([str(Path(sys.executable).parent / "disburse"), "worker"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "w"))
        deadline, body = time.monotonic() + 60, ""
        # the endpoint answers (200, empty) as soon as the runtime exists, metrics once it polls
        while time.monotonic() < deadline and worker.poll() is None and "temporal_" not in body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                    assert r.status == 200
                    body = r.read().decode()
            except OSError:
                pass
            time.sleep(0.2)
        assert "temporal_" in body, (tmp_path / "worker.log").read_text()[-2000:]
        test = compose(example_env())["services"]["worker"]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python"
        check = [sys.executable, *[a.replace(":9464/", f":{port}/") for a in test[2:]]]
        assert subprocess.run(check, timeout=30).returncode == 0
        worker.kill()
        worker.wait(10)
        assert subprocess.run(check, timeout=30, capture_output=True).returncode != 0, "a dead worker is unhealthy"
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        server.stop()


def test_the_image_compiles_the_projects_bytecode_when_it_is_built():
    """The image runs as a user who cannot write /app, with PYTHONDONTWRITEBYTECODE=1: bytecode
    not compiled at build time would be compiled again by every `disburse` command and every
    worker start (workflows/code_cache.py keeps the sandbox's per-instance imports from it)."""
    runs = [rest for word, rest in dockerfile() if word == "RUN"]
    compiling = [r for r in runs if "compileall" in r]
    assert compiling, "no RUN line runs python -m compileall"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip(".*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in project["tool"]["setuptools"]["py-modules"]}
    words = set(compiling[0].replace("&&", " ").split())
    assert packages | modules <= words, f"not compiled: {sorted((packages | modules) - words)}"
    last_user_at = max(i for i, (w, _) in enumerate(dockerfile()) if w == "USER")
    assert dockerfile().index(("RUN", compiling[0])) < last_user_at, "compiled as root, before USER"
