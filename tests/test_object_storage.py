"""The warehouse on S3-compatible object storage: a moto server on 127.0.0.1 stands in for
S3; the same `papers` commands ingest into `s3://`, and the release reads back through
Polars and DuckDB. Two concurrent ingests publish consistent releases with no lock file:
Delta's conditional-put commits order them."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pytest

from pipelines.core.catalog import connect
from pipelines.core.publish import read_release_table, read_table, releases
from pipelines.core.warehouse import WarehousePaths
from tests.conftest import SEEDS_MTIME, concurrent_ingests, set_mtime, two_overlapping_landings
from tests.core.test_storage import copy_and_read_back_by_row

BIN = Path(sys.executable).parent
BUCKET = "papers-warehouse"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with one empty bucket; stopped after the tests."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    try:
        for _ in range(100):
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # not listening yet
                time.sleep(0.1)
        else:
            pytest.fail("the moto S3 server did not start")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _boto_credentials() -> dict:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_REGION"],
    }


@pytest.fixture(scope="module")
def s3_env(s3_endpoint, tmp_path_factory):
    """Endpoint and credentials in the environment (where a deployment puts them), and a
    private cache folder for the local catalog."""
    env = {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield {**os.environ, **env}


def _papers(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "papers"), *args], env=env, capture_output=True, text=True, timeout=600
    )


def _objects(endpoint: str, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


ROOT = f"s3://{BUCKET}/papers"


@pytest.fixture(scope="module")
def seeded_s3(s3_env, seeds_dir, tmp_path_factory) -> WarehousePaths:
    """The seeds ingested into s3://papers-warehouse/papers by `papers ingest`: release 1."""
    landing = tmp_path_factory.mktemp("landing")
    for seed in sorted(seeds_dir.glob("*.txt")):
        set_mtime(Path(shutil.copy(seed, landing)), SEEDS_MTIME)
    done = _papers("ingest", "--landing", str(landing), "--warehouse", ROOT, env=s3_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Published release 1" in done.stdout
    return WarehousePaths(ROOT)


@pytest.mark.slow
def test_a_local_file_copied_into_s3_is_read_back_by_row(s3_env, tmp_path):
    copy_and_read_back_by_row(WarehousePaths(f"{ROOT}-scratch").storage, tmp_path)


@pytest.mark.slow
def test_seeds_ingested_into_s3_read_back_with_polars_and_duckdb(s3_env, s3_endpoint, seeded_s3):
    paths = seeded_s3
    # Everything the warehouse keeps is in the bucket; only the catalog is local.
    keys = _objects(s3_endpoint, "papers/")
    assert any(k.startswith("papers/tables/papers/_delta_log/") for k in keys)
    assert "papers/cards/release-1.md" in keys
    staged = [k for k in keys if k.startswith("papers/staging/packs/")]
    assert sum(k.endswith("/quarantine.parquet") for k in staged) == 1  # one parse step
    assert len(paths.staging.digest_ids()) == 5
    assert not (Path.cwd() / "s3:").exists()  # the URI was never taken for a folder
    assert paths.catalog.is_relative_to(s3_env["XDG_CACHE_HOME"])

    first = releases(paths).row(0, named=True)  # release 1, whatever ran since
    options = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true"}
    # Polars' own Delta reader, not this package's code
    papers = pl.read_delta(
        f"{ROOT}/tables/papers", version=first["papers_version"], storage_options=options
    )
    assert papers.height == first["papers_rows"] > 0
    assert papers["paper_id"].n_unique() == papers.height
    digests = pl.read_delta(
        f"{ROOT}/tables/digests", version=first["digests_version"], storage_options=options
    )
    assert digests.height == 5

    # DuckDB: the local catalog's views read the s3:// Parquet files
    con = connect(paths, read_only=True)
    try:
        (n_papers,) = con.execute("SELECT count(*) FROM r1.papers").fetchone()
        (remote_views,) = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE sql LIKE '%s3://%' AND NOT internal"
        ).fetchone()
        repo = con.execute("SELECT github_repo FROM r1.papers WHERE acronym = 'LAMB'").fetchall()
    finally:
        con.close()
    assert n_papers == papers.height and remote_views > 0
    assert repo == [("tensorflow/addons",)]  # a fact of the seeds, checked by hand
    query = "SELECT count(*) AS n FROM appearances"
    out = _papers("sql", query, "-f", "csv", "--release", "1", "--warehouse", ROOT, env=s3_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["n", str(first["appearances_rows"])]
    card = _papers("card", "1", "--warehouse", ROOT, env=s3_env)
    assert card.returncode == 0 and "release 1" in card.stdout

    # Stock DuckDB without this package's filesystem cannot read s3:// by itself: the
    # README tells users to load httpfs and create an S3 secret.
    stock = duckdb.connect(str(paths.catalog), read_only=True)
    with pytest.raises(duckdb.Error):
        stock.execute("SET autoinstall_known_extensions = false")
        stock.execute("SELECT count(*) FROM papers").fetchall()
    stock.close()


@pytest.mark.slow
def test_two_concurrent_ingests_into_s3_publish_consistent_releases(s3_env, seeded_s3, tmp_path):
    paths = seeded_s3
    before = releases(paths).row(-1, named=True)
    landings = two_overlapping_landings(tmp_path, month="Jul")  # dates no seed has
    concurrent_ingests(landings, s3_env, "--warehouse", ROOT)

    published = releases(paths)
    # gapless, in order, one row per release: no two runs took the same number
    assert published["release"].to_list() == list(range(1, published.height + 1))
    assert published.height > before["release"]
    latest = published.row(-1, named=True)
    papers = read_release_table(paths, latest, "papers")
    new = papers.filter(
        pl.col("title").str.starts_with("Paper ") | (pl.col("title") == "Shared Paper")
    )
    # every paper of both folders, once, beside the seeds' papers; the shared one counted
    # on all ten dates
    assert new.height == 11 and papers.height == before["papers_rows"] + 11
    shared = papers.filter(pl.col("title") == "Shared Paper").row(0, named=True)
    assert shared["n_appearances"] == 10
    assert read_release_table(paths, latest, "digests").height == 5 + 10
    # every release's changelog once: the papers added add up to the latest papers
    changes = read_table(paths, "paper_changes")
    assert changes["release"].unique().sort().to_list() == published["release"].to_list()
    assert changes.filter(pl.col("change") == "added").height == papers.height
    con = connect(paths, read_only=True)
    try:
        assert con.execute("SELECT release FROM catalog_info").fetchone()[0] == latest["release"]
        assert con.execute("SELECT count(*) FROM papers").fetchone()[0] == papers.height
    finally:
        con.close()
