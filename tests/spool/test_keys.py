"""The spool's keys: sealing, keys from FORMS_SPOOL_KEY or a private key file outside the data folder, and rotation."""

from __future__ import annotations

import multiprocessing

import pytest
from cryptography.fernet import Fernet, InvalidToken

from forms_service.config import ConfigError
from forms_service.spool import Sealer, Spool, spool_from_config, unreadable_problem
from forms_service.spool.keys import (
    KeyFileSealer,
    SealingError,
    add_new_key,
    ensure_key_file,
    read_key_file,
    retire_old_keys,
    sealer_from_config,
)
from tests.spool.conftest import outgoing


def test_seal_round_trip_and_authentication(sealer):
    sealed = sealer.seal(b"confidential")
    assert b"confidential" not in sealed
    assert sealer.unseal(sealed) == b"confidential"
    with pytest.raises(InvalidToken):
        sealer.unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(InvalidToken):
        Sealer([Fernet.generate_key()]).unseal(sealed)


def key_file_settings(tmp_path) -> dict:
    """FORMS_SPOOL_KEY_FILE naming a file beside the data folder, made as the dev server makes it."""
    key_file = tmp_path / "keys" / "spool.key"
    ensure_key_file(key_file)
    return {"DATA_DIR": str(tmp_path / "data"), "SPOOL_KEY_FILE": str(key_file)}


def test_a_made_key_file_is_private_and_reused(tmp_path):
    settings = key_file_settings(tmp_path)
    key_file = tmp_path / "keys" / "spool.key"
    first = sealer_from_config(settings)
    assert isinstance(first, KeyFileSealer)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    assert len(read_key_file(key_file)) == 1
    ensure_key_file(key_file)  # a second start keeps the key
    assert sealer_from_config(settings).unseal(first.seal(b"x")) == b"x"
    assert [path.name for path in key_file.parent.iterdir()] == ["spool.key"]  # no temporary file left


def _make_key_in_child(key_file, results) -> None:  # pragma: no cover - child process
    ensure_key_file(key_file)
    results.put(KeyFileSealer(key_file).seal(b"same key"))


def test_processes_making_the_key_file_together_agree_on_one_key(tmp_path):
    key_file = tmp_path / "spool.key"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_make_key_in_child, args=(key_file, results)) for _ in range(6)]
    for child in children:
        child.start()
    tokens = [results.get(timeout=20) for _ in children]
    for child in children:
        child.join(10)
    final = KeyFileSealer(key_file)
    assert all(final.unseal(token) == b"same key" for token in tokens)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    settings = key_file_settings(tmp_path)
    (tmp_path / "keys" / "spool.key").chmod(mode)
    with pytest.raises(SealingError, match=f"mode {mode:04o}"):
        KeyFileSealer(tmp_path / "keys" / "spool.key")
    with pytest.raises(ConfigError) as refused:
        spool_from_config(settings)
    assert str(refused.value).startswith("forms_service: FORMS_SPOOL_KEY_FILE has mode")
    assert "chmod 600" in str(refused.value)


def test_spool_key_setting_forms(tmp_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = Sealer([old]).seal(b"x")
    for setting in (old.decode(), [new.decode(), old.decode()]):
        assert sealer_from_config({"DATA_DIR": str(tmp_path), "SPOOL_KEY": setting}).unseal(sealed) == b"x"


@pytest.mark.parametrize("setting", ["not-a-key", '["unterminated', "[]", []])
def test_bad_spool_key_stops_start_up(tmp_path, setting):
    with pytest.raises(ConfigError, match="^forms_service: FORMS_SPOOL_KEY "):
        spool_from_config({"DATA_DIR": str(tmp_path), "SPOOL_KEY": setting})


@pytest.mark.parametrize(
    "settings, named, says",
    [
        ({}, "FORMS_SPOOL_KEY", "is unset"),
        ({"SPOOL_KEY": ""}, "FORMS_SPOOL_KEY", "is unset"),  # FORMS_SPOOL_KEY= in an environment file
        ({"SPOOL_KEY_FILE": "{tmp}/nowhere/spool.key"}, "FORMS_SPOOL_KEY_FILE", "cannot be read: No such file"),
        ({"SPOOL_KEY_FILE": "{tmp}/data/spool.key"}, "FORMS_SPOOL_KEY_FILE", "is inside FORMS_DATA_DIR"),
        ({"SPOOL_KEY_FILE": "{tmp}/data/../data/keys/k"}, "FORMS_SPOOL_KEY_FILE", "is inside FORMS_DATA_DIR"),
        (
            {"SPOOL_KEY": "K", "SPOOL_KEY_FILE": "{tmp}/spool.key"},
            "FORMS_SPOOL_KEY_FILE",
            "and FORMS_SPOOL_KEY are both",
        ),
    ],
)
def test_the_service_never_makes_a_key_nor_takes_one_from_the_data_folder(tmp_path, settings, named, says):
    """Production gives the key from outside FORMS_DATA_DIR, or start-up stops; nothing is generated."""
    data_dir = tmp_path / "data"
    with pytest.raises(ConfigError) as refused:
        spool_from_config(
            {
                "DATA_DIR": str(data_dir),
                **{name: value.replace("{tmp}", str(tmp_path)) for name, value in settings.items()},
            }
        )
    assert str(refused.value).startswith(f"forms_service: {named} {says}")
    assert "\n" not in str(refused.value)
    assert not data_dir.exists() or [path.name for path in data_dir.iterdir()] == []


def test_rows_no_key_opens_are_the_start_up_problem_and_stay(tmp_path):
    """A lost key: start-up with another one stops, naming the problem, instead of marking every
    message dead; with the right key back, everything is still there."""
    old = Fernet.generate_key().decode()
    settings = {"DATA_DIR": str(tmp_path / "data"), "SPOOL_KEY": old}
    fill(spool_from_config(settings), 3)
    for keys in (Fernet.generate_key().decode(), [Fernet.generate_key().decode()]):
        other = {**settings, "SPOOL_KEY": keys}
        refused = unreadable_problem(spool_from_config(other), other)
        assert str(refused).startswith("forms_service: FORMS_SPOOL_KEY does not open 3 of the 3 messages in ")
    both = {**settings, "SPOOL_KEY": [Fernet.generate_key().decode(), old]}
    spool = spool_from_config(both)
    assert unreadable_problem(spool, both) is None and spool.stats().queued == 3
    assert len(opened_by(tmp_path / "data" / "spool.sqlite3", Sealer([old.encode()]))) == 3


class CountingSealer(Sealer):
    """The real sealer, counting the rows whose signature a check reads."""

    def __init__(self, keys):
        super().__init__(keys)
        self.read = 0

    def signed(self, token) -> bool:
        self.read += 1
        return super().signed(token)


def test_the_monitoring_check_reads_only_what_came_since_its_last_clean_check(spool_path):
    """`spool check` runs every 5 minutes over a backlog of CVs: it reads each row once, until a
    key is dropped, and still finds a row no configured key opens, however many others there are."""
    old, new = Fernet.generate_key(), Fernet.generate_key()
    fill(Spool(spool_path, Sealer([old])), 20)
    sealer = CountingSealer([new, old])
    spool = Spool(spool_path, sealer)
    assert (spool.unreadable(since_last_check=True), sealer.read) == ((0, 20), 20)
    assert (spool.unreadable(since_last_check=True), sealer.read) == ((0, 20), 20)  # nothing new, nothing read
    fill(spool, 2)
    assert (spool.unreadable(since_last_check=True), sealer.read) == ((0, 22), 22)
    Spool(spool_path, Sealer([Fernet.generate_key()])).accept("stranger", [outgoing("stranger")])
    assert (spool.unreadable(since_last_check=True), sealer.read) == ((1, 23), 23)
    assert (spool.unreadable(since_last_check=True), sealer.read) == ((1, 23), 24)  # said until it is fixed
    without_old = CountingSealer([new])
    assert Spool(spool_path, without_old).unreadable(since_last_check=True) == (21, 23)
    assert without_old.read == 23  # a key dropped: everything is read again
    starting = CountingSealer([new, old])
    assert Spool(spool_path, starting).unreadable() == (1, 23) and starting.read == 23  # start-up reads all


def fill(spool: Spool, count: int = 5) -> None:
    for number in range(count):
        spool.accept(f"sub-{number}", [outgoing("rotate", number)])


def opened_by(path, sealer: Sealer) -> list[str]:
    """The id of every message in the spool file that `sealer` opens."""
    spool, opened = Spool(path, sealer), []
    for entry in spool.claim("check", 0.001, 100):
        try:
            opened.append(spool.message(entry).message_id)
        except InvalidToken:
            pass
    return sorted(opened)


def test_rotating_the_setting_key_retires_the_old_one(spool_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    fill(Spool(spool_path, Sealer([old])))
    rotated = Spool(spool_path, Sealer([new, old]))
    assert rotated.reseal() == (5, [])
    assert len(opened_by(spool_path, Sealer([new]))) == 5
    assert opened_by(spool_path, Sealer([old])) == []  # unreadable with the old key


def test_rotating_the_key_file_while_workers_run(tmp_path):
    settings = key_file_settings(tmp_path)
    spool = spool_from_config(settings)
    worker = spool_from_config(settings)  # another process, started before rotation
    fill(spool)
    key_file = tmp_path / "keys" / "spool.key"
    (old,) = read_key_file(key_file)
    add_new_key(key_file)
    assert spool.reseal() == (5, [])
    worker.accept("sub-late", [outgoing("late")])  # the worker already seals with the new key
    retire_old_keys(key_file)
    (new,) = read_key_file(key_file)
    assert new != old
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(opened_by(spool.path, Sealer([new]))) == 6


def test_sealing_follows_a_rotated_key_file(tmp_path):
    path = tmp_path / "keys"
    ensure_key_file(path)
    sealer = KeyFileSealer(path)
    add_new_key(path)
    assert Fernet(read_key_file(path)[0]).decrypt(sealer.seal(b"after rotation")) == b"after rotation"
