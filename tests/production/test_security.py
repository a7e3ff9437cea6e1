"""Security of a running deployment: only loopback listeners, no secret in any log, run config
or event, no pickle among persisted outputs, and a hostile partition key added behind the
CLIs' back fails its run before any path is built (and the failure still reaches the webhook).

The secrets are canaries: a Postgres password (trust auth ignores it), an SMTP password and a
webhook URL token, all given only through the environment as deploy/README.md says."""

import ast
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient
from playwright.sync_api import expect, sync_playwright

from tests.production.conftest import ROOT, wait_until

CANARIES = {
    "postgres": "pg-canary-5f1d0c",
    "smtp": "smtp-canary-9a7e2b",
    "webhook": "hook-canary-3c8d4f",
}
PACKAGES = ("platform_core", "tetra_assets", "ecod_assets", "imaging_assets")
PICKLE_MODULES = {"pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
HOSTILE_BATCH = "../escape"
PICKLE_HEADERS = {bytes([0x80, protocol]) for protocol in range(2, 6)}
IPAddress = IPv4Address | IPv6Address
CHROMIUM = "/usr/bin/chromium"
# Playwright's expect() waits 5 s by default; a loaded 2-core machine serves the UI's first
# pages (and loads three code locations) far slower. Conditions, so no cost when it is quick.
expect.set_options(timeout=180_000)


def _workspace() -> dict:
    return yaml.safe_load((ROOT / "workspace.yaml").read_text())


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append({"path": self.path, **json.loads(self.rfile.read(length))})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP receiver on loopback: (URL with the secret token, received bodies)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook/{CANARIES['webhook']}", _Receiver.bodies
    server.shutdown()


@pytest.fixture
def deployment_env(postgres_url: str, webhook: tuple[str, list[dict]]) -> dict[str, str]:
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    return {
        "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{user}:{CANARIES['postgres']}@{rest}",
        "PLATFORM_ALERT_CHANNELS": "log,webhook",
        "PLATFORM_WEBHOOK_URL": webhook[0],
        "PLATFORM_SMTP_USER": "alerts",
        "PLATFORM_SMTP_PASSWORD": CANARIES["smtp"],
    }


def _listening_sockets() -> dict[int, list[tuple[IPAddress, int]]]:
    """Socket inode -> (address, port) of every TCP listener on this host (/proc/net/tcp*)."""
    sockets: dict[int, list[tuple[IPAddress, int]]] = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            sockets.setdefault(int(fields[9]), []).append((ip_address(packed), int(port, 16)))
    return sockets


def _is_loopback(address: IPAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _process_group(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


RESOURCES_QUERY = """
query Resources($location: String!) {
  allTopLevelResourceDetailsOrError(
    repositorySelector: {repositoryLocationName: $location, repositoryName: "__repository__"}
  ) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
    ... on PythonError { message }
  }
}"""
SECRET_FIELDS = {"smtp_password": "PLATFORM_SMTP_PASSWORD", "webhook_url": "PLATFORM_WEBHOOK_URL"}


def _resources(url: str, location: str) -> list[dict]:
    """Every top-level resource of a location as any client of the UI reads it (GraphQL)."""
    body = json.dumps({"query": RESOURCES_QUERY, "variables": {"location": location}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())["data"]["allTopLevelResourceDetailsOrError"]
    assert "results" in answer, answer
    return answer["results"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is installed by run.sh")
def test_deployment_listens_on_loopback_and_shows_no_secret(production) -> None:
    """Only loopback listeners; the secrets (given through the environment) reach no client of
    the web UI: GraphQL serves the notifier's secret fields as environment-variable names, and
    no page of the UI (resources, deployment configuration) shows a canary."""
    _, env = production
    run = Path(env["DAGSTER_HOME"]) / "run"
    listeners = _listening_sockets()
    bound: list[tuple[int, IPAddress, int]] = []
    for service in ("daemon", "webserver"):
        for pid in _process_group(int((run / f"{service}.pid").read_text())):
            for inode in _socket_inodes(pid) & listeners.keys():
                bound += [(pid, host, port) for host, port in listeners[inode]]
    ports = {port for _, _, port in bound}
    assert int(env["DAGSTER_WEB_PORT"]) in ports  # the check sees the webserver's listener
    assert all(_is_loopback(host) for _, host, _ in bound), bound

    url = f"http://127.0.0.1:{env['DAGSTER_WEB_PORT']}"
    locations = [e["python_module"]["location_name"] for e in _workspace()["load_from"]]
    served = {location: _resources(url, location) for location in locations}
    for location, resources in served.items():
        [notifier] = [r for r in resources if r["name"] == "notifier"]
        values = {v["key"]: v for v in notifier["configuredValues"]}
        for field, variable in SECRET_FIELDS.items():
            assert values[field] == {"key": field, "value": variable, "type": "ENV_VAR"}, location
    leaks = [s for s in CANARIES.values() if s in json.dumps(served)]
    assert not leaks, leaks

    pages = [f"/locations/{name}/resources/notifier" for name in locations]
    pages += ["/deployment/config", "/deployment/daemons"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(120_000)  # a loaded machine serves the first page slowly
        for path in pages:
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            if "resources" in path:  # the page drew the resource, with the variable's name
                expect(page.get_by_text("PLATFORM_SMTP_PASSWORD").first).to_be_visible()
            html = page.content()
            assert not [s for s in CANARIES.values() if s in html], path
        browser.close()


def _python_imports(package: str) -> set[str]:
    names = set()
    for source in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_no_secret_in_logs_events_or_run_config_and_no_pickle(production, webhook) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(env["DAGSTER_WEB_PORT"]))
    inst.add_dynamic_partitions("ecod_batch", [HOSTILE_BATCH])
    good = client.submit_job_execution(
        "tetra_data", "tetra", "__repository__", tags={"dagster/partition": "2018-06-01"}
    )
    hostile = client.submit_job_execution(
        "ecod_full", "ecod", "__repository__", tags={"dagster/partition": HOSTILE_BATCH}
    )

    def ecod_alerts() -> list[dict]:  # other alerts may come (e.g. a run of the module's
        # earlier deployment, stopped mid-run by its down.sh, found failed by monitoring)
        return [body for body in webhook[1] if "ecod_full failed" in body["text"]]

    wait_until(
        lambda: all(inst.get_run_by_id(r).is_finished for r in (good, hostile)) and ecod_alerts(),
        240,
        "both runs and the ECOD failure alert",
        2,
    )
    assert inst.get_run_by_id(good).status == dg.DagsterRunStatus.SUCCESS
    assert inst.get_run_by_id(hostile).status == dg.DagsterRunStatus.FAILURE
    failures = [
        str(e.dagster_event.step_failure_data.error.to_string())
        for e in inst.all_logs(hostile, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]
    assert failures and all("invalid key '../escape'" in f for f in failures), failures
    assert not (root / "escape").exists() and not (root / "data" / "escape").exists()
    [alert] = ecod_alerts()
    assert hostile[:8] in alert["text"] and alert["path"].endswith(CANARIES["webhook"])

    texts: dict[str, str] = {}
    for folder in (Path(env["DAGSTER_HOME"]), root / "data"):
        for path in folder.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for run in inst.get_runs():
        texts[f"run {run.run_id} config and tags"] = json.dumps([run.run_config, run.tags])
        texts[f"run {run.run_id} events"] = "\n".join(
            dg.serialize_value(entry) for entry in inst.all_logs(run.run_id)
        )
    # what was searched: both runs' events, the daemon's log and the runs' captured output
    assert {f"run {r} events" for r in (good, hostile)} <= set(texts)
    assert any(name.endswith("daemon.log") for name in texts)
    assert any(name.endswith(".err") and "compute_logs" in name for name in texts), list(texts)
    leaks = [
        (name, secret)
        for name, text in texts.items()
        for secret in CANARIES.values()
        if secret in text
    ]
    assert not leaks, leaks

    # Persisted outputs: parquet, Arrow IPC, JSON, zarr, never pickle (protocol 2+ starts with
    # 0x80); the instance folder holds only run and sensor-tick compute logs (no
    # FilesystemIOManager pickles).
    outputs = [p for p in (root / "data").rglob("*") if p.is_file()]
    assert any(p.suffix in {".parquet", ".arrow"} for p in outputs), outputs
    pickled = [p for p in outputs if p.read_bytes()[:2] in PICKLE_HEADERS]
    assert not pickled, pickled
    stored = [p for p in (Path(env["DAGSTER_HOME"]) / "storage").rglob("*") if p.is_file()]
    assert all(p.suffix in {".out", ".err", ".complete"} for p in stored), stored
    for package in PACKAGES:
        assert not _python_imports(package) & PICKLE_MODULES, package
