"""The Dagster code location: it loads, assets run with a built context, the graph runs."""

import datetime as dt

import dagster as dg
import pytest

import pipelines.core.landing as landing_module
from pipelines.core.warehouse import WarehousePaths
from pipelines.definitions import defs
from pipelines.defs import inprocess
from pipelines.defs.ingestion import (
    STEP_IO_MANAGER,
    batches_of,
    digest_entries,
    digest_partitions,
    parse_digest_batch,
    parse_report,
)
from pipelines.defs.inprocess import ephemeral_instance, ingest
from pipelines.defs.resources import Progress, StepOutputIOManager, WarehouseResource
from tests.conftest import abstract_for, write_digest

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def test_every_definition_loads_and_is_described():
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert keys == {
        "digest_entries",
        "digests",
        "appearances",
        "papers",
        "quarantine",
        "related_papers",
        "release",
        "duckdb_catalog",
        "housekeeping",
    }
    for key in repository.asset_graph.get_all_asset_keys():
        node = repository.asset_graph.get(key)
        assert node.description, key
        assert node.group_name in {"ingestion", "warehouse", "maintenance"}, key
    checks = {c.name for c in repository.asset_graph.asset_check_keys}
    assert checks == {"matches_schema", "nothing_lost", "release_consistent", "lines_accounted"}
    assert {s.name for s in defs.sensors} == {"landing_sensor"}
    assert defs.resolve_job_def("ingest").executor_def.name == "multi_or_in_process_executor"
    assert {s.name for s in defs.schedules} == {"daily_housekeeping"}


def test_tables_carry_column_descriptions_from_the_schemas():
    repository = defs.get_repository_def()
    node = repository.asset_graph.get(dg.AssetKey("papers"))
    schema = node.metadata["dagster/column_schema"]
    columns = {c.name: c.description for c in schema.columns}
    assert "paper_id" in columns and all(columns.values())


def test_parsing_ops_called_with_a_built_context(landing, warehouse):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    resource = WarehouseResource(landing_dir=str(landing), warehouse_dir=str(warehouse))
    context = dg.build_op_context(resources={"warehouse": resource, "progress": Progress()})
    rows = parse_digest_batch(context, keys=["a.txt"])
    assert [(r["digest"], r["status"], r["valid"], r["date"]) for r in rows] == [
        ("a.txt", "parsed", 1, "2025-03-14")
    ]
    assert len(WarehousePaths(warehouse).staging.digest_ids()) == 1
    again = parse_digest_batch(context, keys=["a.txt"])
    assert again[0]["status"] == "parsed (unchanged)"

    metadata, unbalanced = parse_report(rows, 1)
    assert metadata["valid_entries"] == 1 and metadata["status"] == "parsed"
    assert unbalanced.height == 0
    _, unbalanced = parse_report([{**rows[0], "accounted": rows[0]["lines"] - 1}], 1)
    assert unbalanced["digest"].to_list() == ["a.txt"]


def test_a_run_is_split_into_parse_steps_of_the_configured_size():
    keys = [f"d{day}.txt" for day in range(1, 6)]
    assert batches_of(keys, 2) == [keys[0:2], keys[2:4], keys[4:5]]
    assert batches_of(keys, 100) == [keys]
    assert batches_of(keys, 0) == [[k] for k in keys]  # a size below one means one each


def test_an_unexpected_failure_fails_the_run_but_other_digests_are_staged(
    landing, warehouse, monkeypatch
):
    write_digest(landing, "good.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    write_digest(landing, "boom.txt", "Mar 15", [("Paper B", abstract_for("b"))], T0)
    real = landing_module.parse_digest

    def exploding(data, source_path, *args):
        if source_path == "boom.txt":
            raise RuntimeError("simulated parser bug")
        return real(data, source_path, *args)

    monkeypatch.setattr(landing_module, "parse_digest", exploding)
    with pytest.raises(dg.Failure, match="1 of 2 digests failed"):
        ingest(landing, warehouse)
    assert len(WarehousePaths(warehouse).staging.digest_ids()) == 1
    monkeypatch.setattr(landing_module, "parse_digest", real)
    outcome = ingest(landing, warehouse)  # the next run completes the work
    assert outcome.release["papers_rows"] == 2


def test_graph_materializes_with_a_persistent_instance(landing, warehouse, tmp_path):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        outcome = ingest(landing, warehouse, instance=instance)
        assert outcome.published
        release = instance.get_latest_materialization_event(dg.AssetKey("release"))
        assert release.asset_materialization.metadata["release"].value == 1
        catalog = instance.get_latest_materialization_event(dg.AssetKey("duckdb_catalog"))
        shown = catalog.asset_materialization.metadata  # counted through its views
        assert (shown["release"].value, shown["papers_rows"].value) == (1, 1)
        assert shown["releases_rows"].value == 1 and shown["digests_rows"].value == 1
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("release"), "nothing_lost")]
        )
        assert check


def test_a_big_backfill_runs_in_runs_of_bounded_size(landing, warehouse, monkeypatch, capsys):
    for day in range(1, 6):
        write_digest(
            landing, f"d{day}.txt", f"Mar {day}", [(f"Paper {day}", abstract_for(f"t{day}"))], T0
        )
    monkeypatch.setattr(inprocess, "MAX_DIGESTS_PER_RUN", 2)
    instance = ephemeral_instance()
    outcome = ingest(landing, warehouse, instance=instance)
    runs = instance.get_runs()[::-1]  # oldest first
    # Each run records one planned materialization per asset, for its whole range.
    planned = [
        {
            r.event_log_entry.dagster_event.asset_key: r.event_log_entry.dagster_event
            for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
            ).records
        }
        for run in runs
    ]
    assert [set(p) for p in planned[:2]] == [{digest_entries.key}] * 2
    assert {dg.AssetKey("release"), digest_entries.key} <= set(planned[2])
    ranges = [
        sorted(p[digest_entries.key].event_specific_data.partitions_subset.get_partition_keys())
        for p in planned
    ]
    assert ranges == [["d1.txt", "d2.txt"], ["d3.txt", "d4.txt"], ["d5.txt"]]
    # The three runs staged every digest; only the last built and published the tables.
    assert outcome.published and outcome.release["release"] == 1
    assert outcome.release["digests_rows"] == 5 and outcome.release["papers_rows"] == 5
    # The partitioned check is planned once per partition, as in any Dagster instance (the
    # event listing the run's partitions is serialized once here), and evaluated per run.
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(digest_entries.key, "lines_accounted"), limit=20
    )
    assert sorted(r.partition for r in history if r.partition) == [f"d{d}.txt" for d in range(1, 6)]
    # Each partition's row holds the planned event narrowed to that partition, not a copy
    # of the one listing the whole run (a backfill of 10,000 held 290 MB of those).
    for r in history:
        if r.partition:
            subset = r.event.dagster_event.event_specific_data.partitions_subset
            assert list(subset.get_partition_keys()) == [r.partition]
            assert r.event.run_id == r.run_id
    assert sorted(r.run_id for r in history if r.partition is None) == sorted(
        run.run_id for run in runs
    )
    # Every digest's materialization is kept. The in-process event log stores a run's
    # partitions in one batch (Dagster falls back to one by one if that fails, saying so).
    assert "Exception while storing event batch" not in capsys.readouterr().err
    assert instance.get_materialized_partitions(digest_entries.key) == {
        f"d{d}.txt" for d in range(1, 6)
    }
    records = instance.fetch_materializations(digest_entries.key, limit=10).records
    assert sorted(r.partition_key for r in records) == [f"d{d}.txt" for d in range(1, 6)]
    # The asset table keeps each asset's latest materialization, as any instance's does.
    [entry] = [r.asset_entry for r in instance.get_asset_records([digest_entries.key])]
    assert entry.last_materialization_record.run_id == runs[-1].run_id
    assert entry.last_materialization_record.event_log_entry.dagster_event.partition == "d5.txt"
    assert {digest_entries.key, dg.AssetKey("release")} <= set(instance.all_asset_keys())


def test_an_instance_made_for_one_ingest_keeps_only_its_last_run(landing, warehouse, monkeypatch):
    for day in range(1, 6):
        write_digest(
            landing, f"d{day}.txt", f"Mar {day}", [(f"Paper {day}", abstract_for(f"t{day}"))], T0
        )
    monkeypatch.setattr(inprocess, "MAX_DIGESTS_PER_RUN", 2)
    made = []

    def recorded() -> dg.DagsterInstance:
        made.append(ephemeral_instance())
        return made[-1]

    monkeypatch.setattr(inprocess, "ephemeral_instance", recorded)
    outcome = ingest(landing, warehouse)
    # Three runs, as above; the two parse runs were forgotten once they succeeded, with
    # their events, while what they staged was kept and published by the last.
    [instance] = made
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/asset_partition_range_start"] == "d5.txt"
    # The event log holds the last run's materializations only.
    assert instance.get_materialized_partitions(digest_entries.key) == {"d5.txt"}
    assert outcome.published and outcome.release["papers_rows"] == 5
    assert len(WarehousePaths(warehouse).staging.digest_ids()) == 5


def test_transient_io_errors_are_retried(landing, warehouse, monkeypatch):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    real = landing_module.read_landed
    calls = []

    def flaky(folder, key, *limits):
        calls.append(key)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real(folder, key, *limits)

    monkeypatch.setattr(landing_module, "read_landed", flaky)
    outcome = ingest(landing, warehouse)
    assert len(calls) == 2 and outcome.release["papers_rows"] == 1


def test_housekeeping_materializes_and_checks_the_release(landing, warehouse):
    from pipelines.defs.automation import housekeeping

    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    ingest(landing, warehouse)
    resource = WarehouseResource(landing_dir=str(landing), warehouse_dir=str(warehouse))
    result = dg.materialize(
        [housekeeping],
        resources={"warehouse": resource},
        run_config={"ops": {"housekeeping": {"config": {"min_retention_hours": 0}}}},
    )
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "release_consistent"
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["files_vacuumed"].value == 0


def test_lines_accounted_check_is_recorded_per_digest_partition(landing, warehouse):
    write_digest(landing, "a.txt", "Mar 14", [("Paper A", abstract_for("a"))], T0)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(digest_partitions.name, ["a.txt"])
    resource = WarehouseResource(landing_dir=str(landing), warehouse_dir=str(warehouse))
    result = dg.materialize(
        [digest_entries],
        partition_key="a.txt",
        instance=instance,
        resources={
            "warehouse": resource,
            "progress": Progress(),
            STEP_IO_MANAGER: StepOutputIOManager(warehouse=resource),
        },
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.partition, evaluation.passed) == (
        "lines_accounted",
        "a.txt",
        True,
    )


def test_warehouse_resource_fields_take_precedence_over_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    resource = WarehouseResource(
        warehouse_dir="s3://bucket/papers",
        aws_access_key_id="from-config",
        catalog_path="/tmp/papers-catalog.duckdb",
    )
    paths = resource.paths
    assert paths.remote and paths.storage_options["AWS_ACCESS_KEY_ID"] == "from-config"
    assert paths.storage_options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert str(paths.catalog) == "/tmp/papers-catalog.duckdb"
    local = WarehouseResource(warehouse_dir="/tmp/warehouse").paths
    assert not local.remote and local.storage_options == {}


def test_the_ephemeral_instance_records_what_a_stock_instance_records():
    # Its event log holds events and stores them in batches when next used: every event is
    # stored in the order it came, and the asset index says what Dagster's own does.
    from dagster._core.storage.event_log import InMemoryEventLogStorage
    from dagster._serdes import deserialize_value

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="source")])
    def source():
        yield dg.Output(1)
        yield dg.AssetCheckResult(passed=True)

    @dg.asset
    def derived(source: int) -> int:
        return source + 1

    def record(instance: dg.DagsterInstance) -> tuple:
        runs = [dg.materialize([source, derived], instance=instance).run_id for _ in range(2)]
        events = [
            [(r.event_log_entry.dagster_event_type, r.event_log_entry.step_key) for r in records]
            for records in (instance.get_records_for_run(run).records for run in runs)
        ]
        [check] = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("source"), "positive"), limit=1
        )
        return events, index_of(instance.event_log_storage, runs), runs.index(check.run_id)

    def index_of(storage, runs: list[str]) -> list:
        """Each asset's row of the asset index: its last run and last materialization's."""
        import sqlalchemy as sa
        from dagster._core.storage.event_log.schema import AssetKeyTable

        def run(run_id: str | None) -> int | None:
            return runs.index(run_id) if run_id else None

        with storage.index_connection() as conn:
            rows = conn.execute(
                sa.select(
                    AssetKeyTable.c.asset_key,
                    AssetKeyTable.c.last_run_id,
                    AssetKeyTable.c.last_materialization,
                )
            ).fetchall()
        return sorted(
            (
                dg.AssetKey.from_db_string(key),
                run(last_run),
                run(deserialize_value(last).run_id) if last else None,
            )
            for key, last_run, last in rows
        )

    PLANNED = {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    }
    stock = dg.DagsterInstance.ephemeral()
    ours = record(ephemeral_instance())
    assert ours == record(stock)
    assert ours[1] == [(dg.AssetKey("derived"), 1, 1), (dg.AssetKey("source"), 1, 1)]
    # One batch holding a run's events and the planned events of the next: each asset was
    # last materialized by the first run, and is last planned by the second.
    first, second = [run.run_id for run in stock.get_runs()[::-1]]
    planned = [e for e in stock.all_logs(second) if e.dagster_event_type in PLANNED]
    batch = [*stock.all_logs(first), *planned]
    one_by_one, batched = InMemoryEventLogStorage(), ephemeral_instance().event_log_storage
    for event in batch:
        one_by_one.store_event(event)
    batched.store_event_batch(batch)
    runs = [first, second]
    assert index_of(batched, runs) == index_of(one_by_one, runs)
    assert index_of(batched, runs) == [
        (dg.AssetKey("derived"), 1, 0),
        (dg.AssetKey("source"), 1, 0),
    ]


def test_the_ephemeral_instance_holds_the_tables_dagster_makes_in_memory():
    import sqlalchemy as sa
    from dagster._core.storage.event_log import InMemoryEventLogStorage
    from dagster._core.storage.runs import InMemoryRunStorage

    def tables(storage) -> set[str]:
        return set(sa.inspect(storage._held_conn).get_table_names())

    instance = ephemeral_instance()
    # Made without their Alembic stamp, and nothing else left out.
    assert tables(instance.run_storage) == tables(InMemoryRunStorage()) - {"alembic_version"}
    assert tables(instance.event_log_storage) == tables(InMemoryEventLogStorage()) - {
        "alembic_version"
    }
    assert "instance_info" in tables(instance.run_storage)
