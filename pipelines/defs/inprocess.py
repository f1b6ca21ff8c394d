"""Run the asset graph in this process: what `papers ingest` does."""

import threading
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.partitions.subset.default import DefaultPartitionsSubset
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.instance import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.event_log.base import EventLogCursor
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageMetadata,
    SqlEventLogStorageTable,
)
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import TemporaryLocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage
from dagster._core.storage.runs.schema import RunStorageSqlMetadata
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import create_in_memory_conn_string
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._record import copy
from dagster._serdes import serialize_value
from sqlalchemy.pool import NullPool

from pipelines.core.build import built_from
from pipelines.core.catalog import ReleaseSources, catalog_release
from pipelines.core.landing import DEFAULT_MAX_FILE_BYTES, scan_landing
from pipelines.core.publish import latest_release, read_ahead, read_release_table
from pipelines.core.staging import StagingArea
from pipelines.core.warehouse import WarehousePaths
from pipelines.definitions import build_definitions
from pipelines.defs.automation import INGEST_ASSETS
from pipelines.defs.ingestion import (
    MAX_DIGESTS_PER_RUN,
    batches_of,
    digest_entries,
    digest_partitions,
)
from pipelines.defs.resources import Progress, WarehouseResource


@dataclass
class IngestOutcome:
    n_files: int
    release: dict | None  # the latest release after the run
    published: bool  # whether this run published it
    skipped: list[str] = field(default_factory=list)  # landing paths that were not read


def ingest(
    landing: Path,
    warehouse: str | Path,  # a folder or an s3:// URI
    progress: Progress | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> IngestOutcome:
    """Register one partition per landed file and materialize the graph: one run over the
    new digests (runs of MAX_DIGESTS_PER_RUN digests for a bigger backfill, the last of
    them building and publishing the tables). Already-staged bytes are not parsed again."""
    files, skipped = scan_landing(landing)
    resource = WarehouseResource(
        landing_dir=str(landing), warehouse_dir=str(warehouse), max_file_bytes=max_file_bytes
    )
    paths, staging = resource.paths, resource.staging
    before = latest_release(paths)
    # Only files not staged at this size and mtime are parsed; the rest are known.
    index = staging.landed_index()
    keys = [f.key for f in files if index.get(f.key, [])[:2] != [f.size, f.mtime_ns]]
    if not keys and before is not None and _up_to_date(paths, staging, before):
        return IngestOutcome(len(files), before, False, skipped)  # nothing new: no run at all
    if before is not None:  # read while the run is set up and parses what is new
        read_ahead(paths, before)
    defs = build_definitions(resource, progress)
    # An instance made for this call ends with it: no one can look at a run it finished.
    forget_finished_runs = instance is None
    instance = instance or ephemeral_instance()
    known = set(instance.get_dynamic_partitions(digest_partitions.name))
    instance.add_dynamic_partitions(digest_partitions.name, [k for k in keys if k not in known])
    wanted = set(keys)
    ordered = [k for k in instance.get_dynamic_partitions(digest_partitions.name) if k in wanted]
    everything = dg.AssetSelection.assets(*INGEST_ASSETS)
    # Each run covers the range that holds its new keys (a backfill run); with nothing to
    # parse, one run rebuilds and publishes what is staged and refreshes the catalog.
    runs = [
        (_range_tags(batch), dg.AssetSelection.assets(digest_entries))
        for batch in batches_of(ordered, MAX_DIGESTS_PER_RUN)
    ]
    if runs:
        runs[-1] = (runs[-1][0], everything)
    else:
        runs = [({}, everything - dg.AssetSelection.assets(digest_entries))]
    # The steps of these runs share this process: the tables go from the build to the
    # release in memory rather than written to files and read back.
    resources = {**defs.resources, "io_manager": dg.mem_io_manager}
    for number, (tags, selection) in enumerate(runs, start=1):
        result = dg.materialize(  # raises when the run fails
            defs.assets,
            selection=selection,
            resources=resources,
            instance=instance,
            tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        if forget_finished_runs and number < len(runs):
            # Else its events are held to the end: a full build of 10,000 digests began
            # building at 438 MB with nine parse runs' events, at 366 MB without.
            instance.delete_run(result.run_id)
    # Whether this run published, as its release step says: a concurrent run may have
    # published the very same release meanwhile.
    [event] = result.asset_materializations_for_node("release")
    published = bool(event.metadata["published"].value)
    return IngestOutcome(len(files), latest_release(paths), published, skipped)


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}


class _RunOnlyEventLog(InMemoryEventLogStorage):
    """The event log of an instance that lives for one command: a run over many partitions
    records one planned materialization for them all (Dagster's option, also set by
    DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS) instead of one per partition, which
    cost 5 ms each; every event is written through one held connection, and events are
    stored in batches: each is held until the log is next used, read or written."""

    def __init__(self) -> None:
        self._tables: dict[str, bool] = {}
        self._asset_key_index_cols: bool | None = None
        # InMemoryEventLogStorage.__init__, but for the Alembic stamp (see _RunOnlyRuns).
        self._inst_data = None
        self._engine = create_engine(
            create_in_memory_conn_string(f"events-{uuid.uuid4()}"), poolclass=NullPool
        )
        self._handlers = defaultdict(set)
        self._storage_id = 0
        self._db_lock = threading.Lock()
        self._held_conn = self._engine.connect()
        with self._held_conn.begin():
            SqlEventLogStorageMetadata.create_all(self._held_conn)
            # What each new connection used to be given.
            self._held_conn.exec_driver_sql("PRAGMA foreign_keys=ON;").close()
        self._held_events: list = []  # stored, in order, before the log is next used
        self._held_events_lock = threading.Lock()
        self._storing_held = threading.RLock()

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    @contextmanager
    def _connect(self):
        """The connection held for the instance's life, not a new one (and two PRAGMAs) for
        each of the four statements an event takes. Every statement goes through here, so
        the events held are stored first: whatever reads the log sees every event."""
        self._store_held_events()
        with self._db_lock, self._held_conn.begin():
            yield self._held_conn

    def store_event(self, event) -> None:
        """Held, and stored with the next ones in one batch (see store_event_batch) when
        the log is next used: stored one by one, the 87 events of adding a digest took
        0.08 s. Nothing in this process watches the log as events arrive."""
        with self._held_events_lock:
            self._held_events.append(event)

    def _store_held_events(self) -> None:
        # Reentrant: storing them uses the log, and another thread waits until they are in.
        with self._storing_held:
            with self._held_events_lock:
                events, self._held_events = self._held_events, []
            if events:
                self.store_event_batch(events)

    def has_table(self, table_name: str) -> bool:
        """Asked before storing each event; the tables never change, so ask SQLite once.
        (A dict of this instance's: functools.cache would keep every instance alive.)"""
        if table_name not in self._tables:
            self._tables[table_name] = super().has_table(table_name)
        return self._tables[table_name]

    def _has_asset_key_index_cols_on_connection(self, conn) -> bool:
        """Asked before storing each asset event by inspecting the table's columns (0.12 ms
        each, a run over 1,000 partitions stores 1,000): the tables never change, so once."""
        if self._asset_key_index_cols is None:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def store_event_batch(self, events) -> None:
        """The events Dagster sends as a batch (a run's planned events, and the
        materializations of its partitions: 1,000 in a backfill run), stored at once: one
        INSERT for their rows and one for their tags, and each asset's index row written
        from its last event of each kind, in their order, which is what storing them one by
        one left there (each kind sets columns of its own). One by one, each took 1-2 ms."""
        with self._connect() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                [self._event_to_row(event) for event in events],
            )
            ids = [row[0] for row in inserted]
            assets = [
                (event, event_id)
                for event, event_id in zip(events, ids, strict=True)
                if event.is_dagster_event
                and event.dagster_event_type in ASSET_EVENTS
                and event.dagster_event.asset_key
            ]
            if assets:
                self._store_asset_event_tags(conn, *zip(*assets, strict=True))
                last = {
                    (event.dagster_event.asset_key, event.dagster_event_type): (event_id, event)
                    for event, event_id in assets
                }
                for event_id, event in sorted(last.values(), key=lambda pair: pair[0]):
                    self._store_asset_event(conn, event, event_id)
        for event, event_id in zip(events, ids, strict=True):
            if event.is_dagster_event and event.dagster_event_type in ASSET_CHECK_EVENTS:
                self.store_asset_check_event(event, event_id)
            # What InMemoryEventLogStorage.store_event does after storing an event.
            self._storage_id += 1
            cursor = str(EventLogCursor.from_storage_id(self._storage_id))
            for handler in list(self._handlers[event.run_id]):
                handler(event, cursor)

    def _store_asset_check_evaluation_planned(self, event, event_id) -> None:
        """One row per partition, as Dagster stores it, each holding the planned event
        narrowed to its own partition. Dagster stores the event listing every partition of
        the run in each row, serializing it once per row: 1.8 s for a run of 1,000, and a
        backfill of 10,000 digests held 290 MB of these copies in memory to the end."""
        planned = event.dagster_event.event_specific_data
        subset = planned.partitions_subset

        def narrowed(key: str | None) -> str:
            if key is None:
                return serialize_value(event)
            one = copy(planned, partitions_subset=DefaultPartitionsSubset({key}))
            return serialize_value(
                event._replace(dagster_event=event.dagster_event._replace(event_specific_data=one))
            )

        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert().values(
                    [
                        {
                            "asset_key": planned.asset_key.to_string(),
                            "check_name": planned.check_name,
                            "partition": key,
                            "run_id": event.run_id,
                            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                            "evaluation_event": narrowed(key),
                            "evaluation_event_timestamp": self._event_insert_timestamp(event),
                            "evaluation_event_storage_id": event_id,
                        }
                        for key in (subset.get_partition_keys() if subset else [None])
                    ]
                )
            )


class _RunOnlyRuns(InMemoryRunStorage):
    """The run storage of an instance that lives for one command: InMemoryRunStorage
    without stamping its tables with their Alembic revision. A database that ends with the
    command is never migrated, and loading every migration script to stamp it (here and
    in the event log) took 0.03 of the 0.04 s an instance took to make."""

    def __init__(self) -> None:
        self._engine = create_engine(
            create_in_memory_conn_string(f"runs-{uuid.uuid4()}"), poolclass=NullPool
        )
        self._held_conn = self._engine.connect()  # held for the instance's life
        with self._held_conn.begin():
            RunStorageSqlMetadata.create_all(self._held_conn)  # instance_info among them


class _EphemeralInstance(dg.DagsterInstance):
    def _get_event_batch_size(self) -> int:
        """Dagster batches the materializations of a partition range when this is set
        (its DAGSTER_EVENT_BATCH_SIZE); the event log above stores a batch at once."""
        return MAX_DIGESTS_PER_RUN


def ephemeral_instance() -> dg.DagsterInstance:
    """`DagsterInstance.ephemeral()`, with the event log above."""
    return _EphemeralInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=_RunOnlyRuns(),
        event_storage=_RunOnlyEventLog(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )


def _up_to_date(paths: WarehousePaths, staging: StagingArea, release: dict) -> bool:
    """The latest release was built from exactly what is staged, all its files are there,
    and the catalog shows it."""
    if not ReleaseSources(paths).complete(release):
        return False
    digests = read_release_table(paths, release, "digests").select("digest_id")
    quarantine = read_release_table(paths, release, "quarantine").select("digest_id", "stage")
    built = built_from({"digests": digests, "quarantine": quarantine})
    return (
        built == set(staging.digest_ids()) and catalog_release(paths.catalog) == release["release"]
    )
