"""Where the secret behind client keys comes from: the environment, or a key file.

With ``[privacy] pseudonym_key_env`` set, the configuration carries the key (see
:mod:`gateway.config`). Otherwise the key file (``[privacy] pseudonym_key_file``, default
``<data>/pseudonym.key``) holds it as hex; the first start creates it with 32 random bytes,
mode 0600, and a later start refuses a key file that others may read or that is a link. The
daemon, its prepare workers and the operator commands all read the same key, so a BSN gives
the same client key everywhere. The key belongs with the database: without it, BSN searches
and dossier checks over stored rows no longer match, so the store keeps the key's fingerprint
and refuses another key (:mod:`gateway.store.migrations`).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from gateway.config import Settings
from gateway.core.errors import ConfigError
from gateway.core.privacy import MIN_PSEUDONYM_KEY_BYTES, Pseudonymizer

NEW_KEY_BYTES = 32
_MAX_FILE_BYTES = 1024


def load_pseudonymizer(settings: Settings) -> Pseudonymizer:
    """The pseudonymizer of ``settings``: its key from the environment, or from the key
    file (created on first use); ``ConfigError`` when the file is malformed or not private."""
    if settings.pseudonym_key is not None:
        env = settings.pseudonym_key_env
        variable = f"${env}" if env else "the environment"
        source = f"the key in {variable} ([privacy] pseudonym_key_env)"
        return Pseudonymizer(settings.pseudonym_key.get_secret_value(), source)
    path = settings.pseudonym_key_path
    return Pseudonymizer(key_from_file(path), f"the key file {path} ([privacy] pseudonym_key_file)")


def key_from_file(path: Path) -> bytes:
    """The key in ``path``, made (32 random bytes, mode 0600) when there is no file yet."""
    try:
        return _create(path)
    except FileExistsError:
        return _read(path)


def _create(path: Path) -> bytes:
    key = secrets.token_bytes(NEW_KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key (another process may have made it a moment ago);
        # O_NOFOLLOW: never write through a link someone planted.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the pseudonym key: {exc.strerror}") from exc
    try:
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the pseudonym key: {exc.strerror}") from exc
    os.close(fd)
    return key


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        # ELOOP: the path is a symbolic link, which is never followed.
        raise ConfigError(
            f"{path}: cannot open the pseudonym key (links are refused): {exc.strerror}"
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: the pseudonym key is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"{path}: others may read the pseudonym key "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); make it 0600"
            )
        if info.st_size > _MAX_FILE_BYTES:
            raise ConfigError(f"{path}: the pseudonym key file is too large")
        data = os.read(fd, _MAX_FILE_BYTES)
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: the pseudonym key is not hex") from exc
    if len(key) < MIN_PSEUDONYM_KEY_BYTES:
        raise ConfigError(
            f"{path}: the pseudonym key has fewer than {MIN_PSEUDONYM_KEY_BYTES} bytes"
        )
    return key
