"""The same code location on Dagster's multiprocess executor (each step in its own
process, as the k8s and Celery executors run them) publishes the same release."""

import datetime as dt
import os

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.core.publish import latest_release
from pipelines.core.synthetic import write_digests
from pipelines.core.warehouse import WarehousePaths
from pipelines.definitions import get_ingest_job
from pipelines.defs.inprocess import ingest
from tests.conftest import set_mtime

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
ONE_DIGEST_PER_STEP = {
    "digest_entries": {"ops": {"plan_parse_batches": {"config": {"digests_per_step": 1}}}}
}


def parse_step_spans(entries) -> dict[str, list[float]]:
    """step key -> [start, end] of each parse step, from the run's event log."""
    spans: dict[str, list[float]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None or "parse_digest_batch" not in (event.step_key or ""):
            continue
        if event.event_type_value == "STEP_START":
            spans[event.step_key] = [entry.timestamp, float("inf")]
        elif event.event_type_value == "STEP_SUCCESS":
            spans[event.step_key][1] = entry.timestamp
    return spans


@pytest.mark.slow
def test_multiprocess_backfill_publishes_the_in_process_release(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    for path in write_digests(landing, 4, seed=11, entries_per_digest=12):
        set_mtime(path, T0)
    reference = ingest(landing, tmp_path / "in-process")

    warehouse = tmp_path / "multiprocess"
    monkeypatch.setenv("PAPERS_LANDING_DIR", str(landing))
    monkeypatch.setenv("PAPERS_WAREHOUSE_DIR", str(warehouse))  # read by the step processes
    keys = sorted(p.name for p in landing.glob("*.txt"))
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("digests", keys)
        result = dg.execute_job(
            dg.reconstructable(get_ingest_job),
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
            run_config={
                "execution": {"config": {"multiprocess": {"max_concurrent": 2}}},
                "ops": ONE_DIGEST_PER_STEP,
            },
        )
        assert result.success
        events = result.all_events
        pids = {e.pid for e in events if e.event_type_value == "STEP_START"}
        assert len(pids) >= 4 and os.getpid() not in pids  # every step in its own process
        spans = parse_step_spans(instance.all_logs(result.run_id))
        assert len(spans) == 4  # one parse step per digest
        assert any(  # and two of them ran at the same time
            a != b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
            for a in spans
            for b in spans
        ), spans
    published = latest_release(WarehousePaths(warehouse))
    assert published["release"] == 1
    assert published["content_hash"] == reference.release["content_hash"]
    assert published["papers_rows"] == reference.release["papers_rows"] > 0
