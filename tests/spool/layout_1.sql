-- A spool file as the releases of layout 1 made it (PRAGMA user_version = 1), for tests/spool/test_schema.py.
PRAGMA auto_vacuum = 2;
CREATE TABLE outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    kind TEXT CHECK (kind IN ('association', 'acknowledgement')),
    sealed BLOB NOT NULL
);
CREATE INDEX outgoing_due ON outgoing (state, next_attempt_at);
CREATE TABLE opened_check (only INTEGER PRIMARY KEY CHECK (only = 1), keys TEXT NOT NULL, through_id INTEGER NOT NULL);
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
CREATE TRIGGER schedule_insert AFTER INSERT ON outgoing BEGIN INSERT OR REPLACE INTO schedule (id, state, attempts, queued_at, next_attempt_at, lease_owner, lease_until, last_error) VALUES (NEW.id, NEW.state, NEW.attempts, NEW.queued_at, NEW.next_attempt_at, NEW.lease_owner, NEW.lease_until, NEW.last_error); END;
CREATE TRIGGER schedule_delete AFTER DELETE ON outgoing BEGIN DELETE FROM schedule WHERE id = OLD.id; END;
CREATE TRIGGER schedule_state AFTER UPDATE OF state ON outgoing BEGIN UPDATE schedule SET state = NEW.state WHERE id = NEW.id; END;
CREATE TRIGGER schedule_attempts AFTER UPDATE OF attempts ON outgoing BEGIN UPDATE schedule SET attempts = NEW.attempts WHERE id = NEW.id; END;
CREATE TRIGGER schedule_queued_at AFTER UPDATE OF queued_at ON outgoing BEGIN UPDATE schedule SET queued_at = NEW.queued_at WHERE id = NEW.id; END;
CREATE TRIGGER schedule_next_attempt_at AFTER UPDATE OF next_attempt_at ON outgoing BEGIN UPDATE schedule SET next_attempt_at = NEW.next_attempt_at WHERE id = NEW.id; END;
CREATE TRIGGER schedule_lease_owner AFTER UPDATE OF lease_owner ON outgoing BEGIN UPDATE schedule SET lease_owner = NEW.lease_owner WHERE id = NEW.id; END;
CREATE TRIGGER schedule_lease_until AFTER UPDATE OF lease_until ON outgoing BEGIN UPDATE schedule SET lease_until = NEW.lease_until WHERE id = NEW.id; END;
CREATE TRIGGER schedule_last_error AFTER UPDATE OF last_error ON outgoing BEGIN UPDATE schedule SET last_error = NEW.last_error WHERE id = NEW.id; END;
PRAGMA user_version = 1;
