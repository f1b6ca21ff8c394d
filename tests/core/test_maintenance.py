import datetime as dt
from pathlib import Path

import duckdb

from pipelines.core.maintenance import check_release, compact_releases, vacuum
from pipelines.core.publish import get_release, read_release_table, releases
from pipelines.core.warehouse import WarehousePaths
from pipelines.defs.inprocess import ingest
from tests.conftest import abstract_for, write_digest

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def three_releases(landing, warehouse) -> WarehousePaths:
    for day in (14, 15, 16):
        write_digest(
            landing,
            f"d{day}.txt",
            f"Mar {day}",
            [(f"Paper {day}", abstract_for(f"topic {day}"))],
            T0,
        )
        assert ingest(landing, warehouse).published
    return WarehousePaths(warehouse)


def test_vacuum_keeps_retained_releases_and_deletes_the_rest(landing, warehouse):
    paths = three_releases(landing, warehouse)

    def files(name: str, number: int) -> set[str]:
        return set(paths.delta(name, get_release(paths, number)[f"{name}_version"]).file_uris())

    report = vacuum(paths, keep_releases=2, min_retention_hours=0)
    # Release 1's appearances file, rewritten by each release since, is deleted...
    assert report.removed["appearances"] == len(files("appearances", 1)) == 1
    # ...its papers file is not: releases 2 and 3 only added papers first seen later,
    # so they kept that file and wrote files for those.
    assert files("papers", 1) <= files("papers", 2) and report.removed["papers"] == 0
    for number in (2, 3):  # retained releases stay fully readable
        assert read_release_table(paths, get_release(paths, number), "papers").height == number
    assert check_release(paths) == []
    assert sum(vacuum(paths, keep_releases=2, min_retention_hours=0).removed.values()) == 0


def test_min_retention_protects_recent_files(landing, warehouse):
    paths = three_releases(landing, warehouse)
    report = vacuum(paths, keep_releases=1, min_retention_hours=24)
    assert sum(report.removed.values()) == 0
    assert read_release_table(paths, get_release(paths, 1), "papers").height == 1


def test_compaction_merges_release_rows_and_keeps_the_catalog_working(landing, warehouse):
    paths = three_releases(landing, warehouse)
    assert compact_releases(paths) == 3
    assert releases(paths)["release"].to_list() == [1, 2, 3]
    con = duckdb.connect(str(paths.catalog), read_only=True)
    assert con.execute("SELECT count(*) FROM releases").fetchone()[0] == 3
    con.close()
    assert check_release(paths) == []


def test_check_release_reports_a_missing_data_file(landing, warehouse):
    paths = three_releases(landing, warehouse)
    for data_file in Path(paths.table("papers")).glob("*.parquet"):
        data_file.unlink()
    problems = check_release(paths)
    assert any(p.startswith("papers: cannot read") for p in problems)
    assert any("catalog" in p for p in problems)


def test_catalog_keeps_time_travel_only_for_releases_whose_files_remain(landing, warehouse):
    paths = three_releases(landing, warehouse)
    con = duckdb.connect(str(paths.catalog), read_only=True)
    assert con.execute("SELECT time_travel_releases FROM catalog_info").fetchone()[0] == [1, 2, 3]
    con.close()
    vacuum(paths, keep_releases=2, min_retention_hours=0)
    con = duckdb.connect(str(paths.catalog), read_only=True)
    assert con.execute("SELECT time_travel_releases FROM catalog_info").fetchone()[0] == [2, 3]
    con.execute("USE r2")
    assert con.execute("SELECT count(*) FROM papers").fetchone()[0] == 2
    schemas = {
        s for (s,) in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
    }
    assert "r1" not in schemas
    con.close()
