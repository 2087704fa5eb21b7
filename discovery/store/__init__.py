"""The run directory of a search: its config, an archive of every evaluated candidate, and
checkpoints, laid out so that a run can be resumed and end where an uninterrupted one ends.

    RUN_DIR/config.toml      the run's config text, written once
    RUN_DIR/archive.sqlite   SQLite (WAL): candidates, scores, validation, baselines, events,
                             levels (what the scheduler sampled each generation)
    RUN_DIR/checkpoints/     checkpoint-00000012.msgpack: the newest few, checksummed
    RUN_DIR/lock             flock'ed by the run's one writer; holds its "pid host"
    RUN_DIR/task_modules.json  where the run's own task modules were found (module -> folder),
                             so that a resume from another folder finds them (absent: none)

One process writes a run at a time: `RunStore.create` and `RunStore.open` (write=True) take
the run's `RunLock`, `close` releases it, and the kernel releases it when the writer dies.
Readers (`RunStore.open(..., write=False)`) take no lock and see one committed snapshot; a
run in a folder this process cannot write is read as it is (SQLite's immutable mode).

Nothing read from a run directory is unpickled or executed: the archive is SQL rows and a
checkpoint is msgpack of plain data. No row holds a timestamp, so two runs with the same seed
write identical archives.

The modules, one job each: `records` (the rows as records), `rows` (records to SQL values),
`schema` and `migrations` (the archive's tables, older archives upgraded), `connection`,
`queries` and `writes` (reading and writing the archive), `checkpoints`, `lock`, `files`
(atomic writes), `errors`, and `run` (`RunStore`, the directory itself).
"""

from disco_rules.discovery.store.checkpoints import (CHECKPOINT_FORMAT, decode_checkpoint,
                                                     encode_checkpoint)
from disco_rules.discovery.store.errors import (ArchiveDamagedError, CheckpointError,
                                                CheckpointWarning, DuplicateRecordError,
                                                RunLockedError, StorageError, StoreError,
                                                storage_error)
from disco_rules.discovery.store.files import write_atomically
from disco_rules.discovery.store.lock import LOCK_NAME, RunLock
from disco_rules.discovery.store.records import (BaselineRecord, CandidateRecord,
                                                 ConfirmationRecord, Curve, EventRecord,
                                                 SampledLevelRecord, ScoreRecord,
                                                 ValidationRecord)
from disco_rules.discovery.store.run import (ARCHIVE_NAME, CHECKPOINT_DIR, CONFIG_NAME,
                                             TASK_MODULES_NAME, WARM_START_DIR, RunStore)
from disco_rules.discovery.store.schema import SCHEMA_VERSION

__all__ = [
    "ARCHIVE_NAME", "CHECKPOINT_DIR", "CHECKPOINT_FORMAT", "CONFIG_NAME", "LOCK_NAME",
    "SCHEMA_VERSION", "TASK_MODULES_NAME", "WARM_START_DIR",
    "ArchiveDamagedError", "BaselineRecord", "CandidateRecord", "CheckpointError",
    "CheckpointWarning", "ConfirmationRecord", "Curve", "DuplicateRecordError", "EventRecord",
    "RunLock", "RunLockedError", "RunStore", "SampledLevelRecord", "ScoreRecord", "StorageError",
    "StoreError", "ValidationRecord", "decode_checkpoint", "encode_checkpoint",
    "storage_error", "write_atomically",
]
