"""Symmetric sealing: keys from FORMS_SPOOL_KEY or a private key file, and rotation."""

from __future__ import annotations

import multiprocessing

import pytest
from cryptography.fernet import Fernet, InvalidToken

from forms_service.config import ConfigError
from forms_service.sealing import (
    KEY_FILE_NAME,
    KeyFileSealer,
    Sealer,
    SealingError,
    add_new_key,
    load_sealer,
    read_key_file,
    retire_old_keys,
)
from forms_service.spool import Spool, spool_from_config
from tests.spool.conftest import outgoing


def test_seal_round_trip_and_authentication(sealer):
    sealed = sealer.seal(b"confidential")
    assert b"confidential" not in sealed
    assert sealer.unseal(sealed) == b"confidential"
    with pytest.raises(InvalidToken):
        sealer.unseal(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(InvalidToken):
        Sealer([Fernet.generate_key()]).unseal(sealed)


def test_local_key_file_is_generated_private_and_reused(tmp_path):
    data_dir = tmp_path / "data"
    first = load_sealer(None, data_dir)
    key_file = data_dir / KEY_FILE_NAME
    assert isinstance(first, KeyFileSealer)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert len(read_key_file(key_file)) == 1
    assert load_sealer(None, data_dir).unseal(first.seal(b"x")) == b"x"
    assert [path.name for path in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary file left


def _seal_in_child(data_dir, results) -> None:  # pragma: no cover - child process
    results.put(load_sealer(None, data_dir).seal(b"same key"))


def test_workers_starting_together_agree_on_one_key(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [context.Process(target=_seal_in_child, args=(tmp_path, results)) for _ in range(6)]
    for child in children:
        child.start()
    tokens = [results.get(timeout=20) for _ in children]
    for child in children:
        child.join(10)
    final = load_sealer(None, tmp_path)
    assert all(final.unseal(token) == b"same key" for token in tokens)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    load_sealer(None, tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(mode)
    with pytest.raises(SealingError, match=f"mode {mode:04o}"):
        load_sealer(None, tmp_path)
    with pytest.raises(ConfigError) as refused:
        spool_from_config({"DATA_DIR": str(tmp_path)})
    assert str(refused.value).startswith("forms_service: FORMS_SPOOL_KEY is unset and the key file")
    assert "chmod 600" in str(refused.value)


def test_spool_key_setting_forms(tmp_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = Sealer([old]).seal(b"x")
    for setting in (old.decode(), [new.decode(), old.decode()]):
        assert load_sealer(setting, tmp_path).unseal(sealed) == b"x"
    assert not (tmp_path / KEY_FILE_NAME).exists()  # no key file when the setting is given


@pytest.mark.parametrize("setting", ["not-a-key", "[\"unterminated", "[]", []])
def test_bad_spool_key_stops_start_up(tmp_path, setting):
    with pytest.raises(ConfigError, match="^forms_service: FORMS_SPOOL_KEY "):
        spool_from_config({"DATA_DIR": str(tmp_path), "SPOOL_KEY": setting})


def fill(spool: Spool, count: int = 5) -> None:
    for number in range(count):
        spool.accept(f"sub-{number}", [outgoing("rotate", number)])


def opened_by(path, sealer: Sealer) -> list[str]:
    """Every message id in the spool file, opened with `sealer` alone."""
    return sorted(entry.mail.message_id for entry in Spool(path, sealer).claim("check", 0.001, 100))


def test_rotating_the_setting_key_retires_the_old_one(spool_path):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    fill(Spool(spool_path, Sealer([old])))
    rotated = Spool(spool_path, Sealer([new, old]))
    assert rotated.reseal() == (5, [])
    assert len(opened_by(spool_path, Sealer([new]))) == 5
    assert opened_by(spool_path, Sealer([old])) == []  # unreadable with the old key: marked dead


def test_rotating_the_key_file_while_workers_run(tmp_path):
    data_dir = tmp_path / "data"
    spool = Spool(data_dir / "spool.sqlite3", load_sealer(None, data_dir))
    worker = Spool(spool.path, load_sealer(None, data_dir))  # another process, started before rotation
    fill(spool)
    key_file = data_dir / KEY_FILE_NAME
    (old,) = read_key_file(key_file)
    add_new_key(key_file)
    assert spool.reseal() == (5, [])
    worker.accept("sub-late", [outgoing("late")])  # the worker already seals with the new key
    retire_old_keys(key_file)
    (new,) = read_key_file(key_file)
    assert new != old
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(opened_by(spool.path, Sealer([new]))) == 6
