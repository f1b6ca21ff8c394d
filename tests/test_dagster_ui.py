"""Slow: the real `dagster dev` (webserver and daemon) on 127.0.0.1, driven as a user would.

One server is shared by the tests of this module: the sensor test turns the sensor on
through GraphQL and waits for the run a new digest triggers; the browser test opens the
asset graph in headless Chromium and saves a screenshot.
"""

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.conftest import abstract_for, write_digest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCREENSHOT = ROOT / "tests" / "artifacts" / "asset-graph.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.landing = tmp / "landing"
        self.warehouse = tmp / "warehouse"
        self.landing.mkdir()
        home = tmp / "dagster_home"
        home.mkdir()
        # nux off: no first-run "join the community" dialog covering the page
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "PAPERS_LANDING_DIR": str(self.landing),
            "PAPERS_WAREHOUSE_DIR": str(self.warehouse),
        }
        self.log = open(tmp / "dagster-dev.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends every child
        )
        self.log_path = tmp / "dagster-dev.log"

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as reply:
                    if (
                        reply.status == 200
                        and self.graphql(
                            "{ workspaceOrError { ... on Workspace { locationEntries { "
                            "locationOrLoadError { __typename } } } } }"
                        )["workspaceOrError"]["locationEntries"][0]["locationOrLoadError"][
                            "__typename"
                        ]
                        == "RepositoryLocation"
                    ):
                        return
            except (OSError, KeyError, IndexError, TypeError):
                pass
            time.sleep(1)
        raise AssertionError("dagster dev did not come up:\n" + self.log_path.read_text()[-3000:])

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            payload = json.loads(reply.read())
        assert "errors" not in payload, payload
        return payload["data"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    server = DagsterDev(tmp_path_factory.mktemp("dagster_dev"))
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()
    assert server.process.poll() is not None


START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
  }
}"""

RUNS = """
{ runsOrError(limit: 20) { ... on Runs { results { runId status tags { key value } } } } }
"""


def test_sensor_picks_up_a_new_digest_and_its_papers_reach_the_catalog(dagster_dev):
    started = dagster_dev.graphql(
        START_SENSOR,
        {
            "selector": {
                "repositoryLocationName": "daily_papers",
                "repositoryName": "__repository__",
                "sensorName": "landing_sensor",
            }
        },
    )["startSensor"]
    assert started["__typename"] == "Sensor", started
    assert started["sensorState"]["status"] == "RUNNING"

    landed = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # settled: not being written
    write_digest(
        dagster_dev.landing,
        "digest-2025-03-14.txt",
        "Mar 14",
        [
            ("Sensor Found Me: A Paper", abstract_for("sensors")),
            ("Second Sensor Paper", abstract_for("daemons")),
        ],
        landed,
    )

    deadline = time.monotonic() + 240
    runs = []
    while time.monotonic() < deadline:
        runs = dagster_dev.graphql(RUNS)["runsOrError"]["results"]
        if any(r["status"] in ("FAILURE", "CANCELED") for r in runs):
            break
        if any(r["status"] == "SUCCESS" for r in runs):
            break
        time.sleep(2)
    assert [r["status"] for r in runs] == ["SUCCESS"], (
        runs,
        dagster_dev.log_path.read_text()[-4000:],
    )
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["dagster/sensor_name"] == "landing_sensor"
    assert tags["papers/digests"] == "1"

    con = duckdb.connect(str(dagster_dev.warehouse / "catalog.duckdb"), read_only=True)
    titles = sorted(t for (t,) in con.execute("SELECT title FROM papers").fetchall())
    con.close()
    assert titles == ["Second Sensor Paper", "Sensor Found Me: A Paper"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed here (apt-get install chromium)")
    return found


def test_asset_graph_renders_in_a_real_browser(dagster_dev, tmp_path):
    browser = chromium()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1600,1000",
        "--virtual-time-budget=20000",
    ]
    # the release's upstream lineage: the digest partitions, the four tables, the release
    page = f"{dagster_dev.url}/assets/release?view=lineage&lineageScope=upstream&lineageDepth=2"
    expected = ("digest_entries", "digests", "appearances", "papers", "quarantine", "release")
    missing: list[str] = list(expected)
    for _ in range(5):  # virtual time does not wait for the server's first (slow) answers
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        missing = [asset for asset in expected if asset not in dom.stdout]
        if not missing:
            break
        time.sleep(3)
    assert missing == [], f"not on the rendered asset graph page: {missing}"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shot = subprocess.run(
        [browser, *flags, f"--screenshot={SCREENSHOT}", page],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0 and SCREENSHOT.stat().st_size > 10_000, shot.stderr[-2000:]
