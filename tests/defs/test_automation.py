"""The landing sensor, evaluated tick by tick with build_sensor_context."""

import datetime as dt
import json

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from pipelines.defs import automation
from pipelines.defs.automation import landing_sensor
from pipelines.defs.ingestion import digest_partitions
from pipelines.defs.resources import WarehouseResource
from tests.conftest import abstract_for, set_mtime, write_digest

SETTLED = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)  # long ago: the file is not being written


class Ticker:
    """Evaluates the sensor like the daemon does: cursor carried over, partitions added."""

    def __init__(self, landing, warehouse):
        self.instance = dg.DagsterInstance.ephemeral()
        self.resource = WarehouseResource(landing_dir=str(landing), warehouse_dir=str(warehouse))
        self.cursor = None

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": self.resource}
        )
        result = landing_sensor(context)
        if isinstance(result, dg.SensorResult):
            self.cursor = result.cursor
            for request in result.dynamic_partitions_requests or []:
                self.instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
        return result


def covered(request: dg.RunRequest) -> tuple[str, str, str]:
    tags = request.tags
    return (
        tags[ASSET_PARTITION_RANGE_START_TAG],
        tags[ASSET_PARTITION_RANGE_END_TAG],
        tags["papers/digests"],
    )


@pytest.fixture
def ticker(landing, warehouse):
    return Ticker(landing, warehouse)


def test_new_files_get_partitions_and_one_covering_run(ticker, landing):
    for day in (14, 15, 16):
        write_digest(landing, f"d{day}.txt", f"Mar {day}", [("P", abstract_for("p"))], SETTLED)
    result = ticker.tick()
    [request] = result.run_requests
    assert covered(request) == ("d14.txt", "d16.txt", "3")
    assert request.run_key.startswith("batch-3@")
    assert ticker.instance.get_dynamic_partitions(digest_partitions.name) == [
        "d14.txt",
        "d15.txt",
        "d16.txt",
    ]


def test_unchanged_and_touched_files_request_nothing(ticker, landing):
    path = write_digest(landing, "a.txt", "Mar 14", [("P", abstract_for("p"))], SETTLED)
    assert len(ticker.tick().run_requests) == 1
    again = ticker.tick()
    assert (
        again.run_requests == [] and "no new or changed digests" in again.skip_reason.skip_message
    )
    set_mtime(path, SETTLED + dt.timedelta(days=1))  # touched: same bytes
    assert ticker.tick().run_requests == []


def test_changed_content_is_requested_again_with_a_new_run_key(ticker, landing):
    write_digest(landing, "a.txt", "Mar 14", [("P", abstract_for("p"))], SETTLED)
    [first] = ticker.tick().run_requests
    write_digest(
        landing, "a.txt", "Mar 14", [("Q", abstract_for("q"))], SETTLED + dt.timedelta(hours=1)
    )
    [second] = ticker.tick().run_requests
    assert covered(second) == ("a.txt", "a.txt", "1")
    assert second.tags["papers/reason"] == "changed"
    assert second.run_key != first.run_key and second.run_key.startswith("a.txt@")


def test_a_file_still_being_written_waits_for_a_quiet_tick(ticker, landing):
    path = landing / "growing.txt"
    path.write_text("new\n\nMar 14\n\nHalf a Title")  # mtime is now: being written
    first = ticker.tick()
    assert first.run_requests == [] and "1 still being written" in first.skip_reason.skip_message
    with open(path, "a") as handle:  # the writer goes on
        handle.write("\n\n" + abstract_for("growing") + "\n")
    assert ticker.tick().run_requests == []  # changed since the last tick: still waiting
    [request] = ticker.tick().run_requests  # unchanged for a tick: complete
    assert covered(request)[0] == "growing.txt"


def test_more_files_than_a_tick_allows_are_spread_over_ticks(ticker, landing, monkeypatch):
    monkeypatch.setattr(automation, "MAX_FILES_PER_TICK", 2)
    for day in range(1, 6):
        write_digest(landing, f"d{day}.txt", f"Mar {day}", [("P", abstract_for("p"))], SETTLED)
    counts = []
    for _ in range(3):
        result = ticker.tick()
        counts.append(sum(int(r.tags["papers/digests"]) for r in result.run_requests))
    assert counts == [2, 2, 1]
    assert len(ticker.instance.get_dynamic_partitions(digest_partitions.name)) == 5
    assert ticker.tick().run_requests == []


def test_deleted_file_is_forgotten_and_missing_landing_is_a_skip(ticker, landing, tmp_path):
    path = write_digest(landing, "a.txt", "Mar 14", [("P", abstract_for("p"))], SETTLED)
    ticker.tick()
    path.unlink()
    result = ticker.tick()
    assert result.run_requests == [] and json.loads(result.cursor)["done"] == {}
    ticker.resource = WarehouseResource(
        landing_dir=str(tmp_path / "nope"), warehouse_dir=str(tmp_path / "w")
    )
    skip = ticker.tick()
    assert isinstance(skip, dg.SkipReason) and "does not exist" in skip.skip_message
