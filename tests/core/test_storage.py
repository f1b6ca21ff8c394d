"""Where the warehouse's files live: options from the environment, whole-file writes,
listings, and what a URI root resolves to."""

from pathlib import Path

from pipelines.core.storage import Storage, s3_options
from pipelines.core.warehouse import WarehousePaths, resolve_dirs


def test_s3_options_come_from_the_environment_unless_given(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    options = s3_options({"AWS_ACCESS_KEY_ID": "given", "AWS_SECRET_ACCESS_KEY": None})
    assert options["AWS_ACCESS_KEY_ID"] == "given"
    assert options["AWS_REGION"] == "eu-west-1"
    assert options["AWS_ALLOW_HTTP"] == "true"  # a plain-http endpoint must be allowed
    assert "AWS_SESSION_TOKEN" not in options
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example.org")
    assert "AWS_ALLOW_HTTP" not in s3_options()  # the S3-specific variable wins


def test_local_storage_writes_whole_files_and_lists_them(tmp_path):
    storage = Storage(str(tmp_path / "root"))
    storage.write_bytes("cards/release-1.md", b"one")
    storage.write_bytes("cards/release-1.md", b"two")  # replaced, not appended
    storage.write_bytes("staging/digests/abc/quarantine.parquet", b"x")
    assert storage.read_bytes("cards/release-1.md") == b"two"
    assert storage.exists("cards/release-1.md") and not storage.exists("cards/release-2.md")
    assert storage.files("") == ["cards/release-1.md", "staging/digests/abc/quarantine.parquet"]
    assert storage.files("nothing/here") == []
    assert not list((tmp_path / "root").rglob(".tmp-*"))  # no temporary file left behind
    storage.delete("cards/release-1.md")
    storage.delete("cards/release-1.md")  # already gone: another run deleted it first
    assert storage.files("cards") == []
    (tmp_path / "root" / "cards" / ".tmp-0123").write_bytes(b"half")  # another run's write
    assert storage.files("cards") == []  # not a file yet: nobody may delete it


def copy_and_read_back_by_row(storage: Storage, tmp_path: Path) -> Path:
    """Copy a local Parquet file of four rows into `storage` as counts/words.parquet and
    check its rows, counted from the footer and read back by row; returns the local file.
    What a full build's word counts, written to a local file as counted, go through."""
    import polars as pl

    local = tmp_path / "words.parquet"
    pl.DataFrame({"word": [3, 1, 2, 1], "tf": [1, 2, 3, 4]}).write_parquet(local)
    storage.write_file(local, "counts/words.parquet")
    assert storage.n_rows("counts/words.parquet") == 4
    # Numbered before filtered: each row's place in the file.
    found = storage.read_parquet(
        ["counts/words.parquet"], where=pl.col("word") == 1, row_index="row"
    )
    assert found.rows() == [(1, 1, 2), (3, 1, 4)]
    return local


def test_a_local_file_is_copied_whole_and_read_back_by_row(tmp_path):
    local = copy_and_read_back_by_row(Storage(str(tmp_path / "root")), tmp_path)
    assert (tmp_path / "root" / "counts" / "words.parquet").read_bytes() == local.read_bytes()
    assert not list((tmp_path / "root").rglob(".tmp-*"))


def test_an_s3_root_stays_a_uri_and_its_catalog_is_local(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAPERS_WAREHOUSE_DIR", raising=False)
    monkeypatch.delenv("PAPERS_CATALOG_PATH", raising=False)
    _, root = resolve_dirs(None, "s3://bucket/papers/")
    assert root == "s3://bucket/papers/"
    paths = WarehousePaths(root)
    assert paths.remote and paths.table("papers") == "s3://bucket/papers/tables/papers"
    assert paths.catalog.is_relative_to(tmp_path / "cache" / "papers")
    assert WarehousePaths("s3://bucket/other").catalog != paths.catalog  # one per warehouse
    _, local = resolve_dirs(None, "relative/folder")
    assert Path(local).is_absolute()
    assert WarehousePaths(local).catalog == Path(local) / "catalog.duckdb"
    monkeypatch.setenv("PAPERS_CATALOG_PATH", str(tmp_path / "mine.duckdb"))
    assert paths.catalog == WarehousePaths(local).catalog == tmp_path / "mine.duckdb"
