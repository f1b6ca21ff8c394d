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


def parse_steps(events) -> dict[str, tuple[int, str]]:
    """parse step key -> (its process id, the step its input came from)."""
    pids = {e.step_key: e.pid for e in events if e.event_type_value == "STEP_START"}
    return {
        e.step_key: (pids[e.step_key], e.event_specific_data.upstream_step_key)
        for e in events
        if e.event_type_value == "LOADED_INPUT" and "parse_digest_batch" in e.step_key
    }


@pytest.mark.slow
def test_multiprocess_backfill_publishes_the_in_process_release(tmp_path, monkeypatch):
    landing, later = tmp_path / "landing", tmp_path / "later"
    *first, fifth = write_digests(later, 5, seed=11, entries_per_digest=12)
    landing.mkdir()
    for path in first:
        set_mtime(path.rename(landing / path.name), T0)
    reference = ingest(landing, tmp_path / "in-process")

    warehouse = tmp_path / "multiprocess"
    monkeypatch.setenv("PAPERS_LANDING_DIR", str(landing))
    monkeypatch.setenv("PAPERS_WAREHOUSE_DIR", str(warehouse))  # read by the step processes
    keys = sorted(p.name for p in landing.glob("*.txt"))
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    def run(instance, keys: list[str]):
        instance.add_dynamic_partitions("digests", keys)
        return dg.execute_job(
            dg.reconstructable(get_ingest_job),
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
            run_config={
                "execution": {"config": {"multiprocess": {"max_concurrent": 4}}},
                "ops": ONE_DIGEST_PER_STEP,
            },
        )

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = run(instance, keys)
        assert result.success
        events = result.all_events
        pids = {e.pid for e in events if e.event_type_value == "STEP_START"}
        assert len(pids) >= 4 and os.getpid() not in pids  # every step in its own process
        steps = parse_steps(events)
        # One parse step per digest, each in its own process, each fed by the planning step
        # alone: siblings the executor runs side by side, max_concurrent at a time.
        assert len(steps) == 4 and len({pid for pid, _ in steps.values()}) == 4
        assert {upstream for _, upstream in steps.values()} == {"digest_entries.plan_parse_batches"}
        published = latest_release(WarehousePaths(warehouse))
        assert published["release"] == 1
        assert published["content_hash"] == reference.release["content_hash"]
        assert published["papers_rows"] == reference.release["papers_rows"] > 0
        # A day later: the papers kept as published go from the build's process to the
        # release's through the IO manager's file, and make the in-process release.
        set_mtime(fifth.rename(landing / fifth.name), T0)
        reference = ingest(landing, tmp_path / "in-process")
        assert run(instance, [fifth.name]).success
    published = latest_release(WarehousePaths(warehouse))
    assert published["release"] == reference.release["release"] == 2
    assert published["content_hash"] == reference.release["content_hash"]
    assert published["papers_rows"] == reference.release["papers_rows"]
