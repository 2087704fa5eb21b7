"""The archive's SQL schema: candidates, scores, validation, the shortlist, the
confirmation, baselines, events and levels."""

SCHEMA_VERSION = 9  # 2: candidates.weights (network candidates); 3: the levels table;
# 4: baselines.optimizer, weight_decay and seeds (the tuned AdamW/Adam baseline);
# 5: baselines.schedule (the baseline's tuned learning-rate schedule);
# 6: candidates.kind is the population kind's name ("programs", not "program");
# 7: scores.schedule (the schedule of a candidate's tuned lr);
# 8: the confirmation table (the chosen winner and the baseline on fresh seeds);
# 9: the shortlist table (the surest validated programs and the baseline on other fresh seeds)

# a table of candidates and the baseline on fresh seeds (FRESH_TABLES): one row per task
_FRESH_COLUMNS = """(
    candidate_id INTEGER NOT NULL
        REFERENCES candidates(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    task        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    score       REAL,
    loss        REAL,
    baseline_loss REAL,
    seed        INTEGER NOT NULL,
    seeds       INTEGER NOT NULL,
    PRIMARY KEY (candidate_id, task)
)"""

SCHEMA = f"""
CREATE TABLE candidates (
    id          INTEGER PRIMARY KEY,
    generation  INTEGER NOT NULL,
    parent_id   INTEGER REFERENCES candidates(id) DEFERRABLE INITIALLY DEFERRED,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    fingerprint TEXT,
    fitness     REAL,
    status      TEXT NOT NULL,
    reason      TEXT,
    weights     BLOB
);
CREATE INDEX candidates_generation ON candidates(generation);
CREATE INDEX candidates_hash ON candidates(hash);
CREATE INDEX candidates_fingerprint ON candidates(fingerprint);
CREATE INDEX candidates_parent ON candidates(parent_id);
CREATE TABLE scores (
    candidate_id INTEGER NOT NULL
        REFERENCES candidates(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    task        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    score       REAL,
    loss        REAL,
    lr          REAL,
    curve       BLOB,
    schedule    TEXT,
    PRIMARY KEY (candidate_id, task)
);
CREATE INDEX scores_generation ON scores(generation);
CREATE TABLE validation (
    candidate_id INTEGER NOT NULL
        REFERENCES candidates(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    task        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    score       REAL,
    PRIMARY KEY (candidate_id, task)
);
CREATE INDEX validation_generation ON validation(generation);
CREATE TABLE shortlist {_FRESH_COLUMNS};
CREATE TABLE confirmation {_FRESH_COLUMNS};
CREATE TABLE baselines (
    task        TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    score       REAL,
    loss        REAL,
    lr          REAL,
    curve       BLOB,
    optimizer   TEXT,
    weight_decay REAL,
    seeds       INTEGER,
    schedule    TEXT
);
CREATE TABLE events (
    generation  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       REAL,
    PRIMARY KEY (generation, name)
);
CREATE TABLE levels (
    generation  INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    task        TEXT NOT NULL,
    family      TEXT NOT NULL,
    params      TEXT NOT NULL,
    regret      REAL,
    replayed    INTEGER NOT NULL,
    PRIMARY KEY (generation, position)
);
"""

TABLES = frozenset({"candidates", "scores", "validation", "shortlist", "confirmation",
                    "baselines", "events", "levels"})
FRESH_TABLES = ("shortlist", "confirmation")  # rows on fresh seeds (discovery/confirmation.py)
