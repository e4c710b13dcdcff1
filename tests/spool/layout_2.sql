-- A spool file as the releases of layout 2 made it (PRAGMA user_version = 2), for tests/spool/test_schema.py.
PRAGMA auto_vacuum = 2;
CREATE TABLE outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('association', 'acknowledgement')),
    created_at REAL NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE schedule (
    id INTEGER PRIMARY KEY,  -- outgoing.id
    state TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT
);
CREATE INDEX schedule_due ON schedule (state, next_attempt_at);
CREATE TABLE opened_check (only INTEGER PRIMARY KEY CHECK (only = 1), keys TEXT NOT NULL, through_id INTEGER NOT NULL);
PRAGMA user_version = 2;
