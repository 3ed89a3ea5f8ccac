"""Personal data at rest: 身份证号 encrypted with a key from the environment, plus a keyed hash to look them up.

A dump of the case database (or of Rasa's tracker store) alone does not reveal a 身份证号: the value is stored as a
Fernet token (AES-128-CBC + HMAC-SHA256, a fresh IV each time) and, for lookups and unique constraints, as an
HMAC-SHA256 of the normalised number under a second key. Both keys are derived (HKDF-SHA256) from one secret,
`HELPLINE_DATA_KEY`. Without the secret the hash cannot be recomputed, so the small space of valid numbers
(~10^10 per county and birth year) cannot be searched offline either.

The embedded SQLite default (a pilot on one machine) makes its own secret on first use, in `var/data.key` (mode
0600, next to the database it protects); any other database refuses to start without `HELPLINE_DATA_KEY`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url

from actions.settings import PROJECT_ROOT

TOKEN_PREFIX = "f1:"  # the scheme's version, so that a later key or cipher can be told apart
MIN_SECRET_BYTES = 32
DEFAULT_KEY_FILE = PROJECT_ROOT / "var" / "data.key"


class DataKeyError(RuntimeError):
    """The data key is missing or unusable."""


class DecryptionError(RuntimeError):
    """A stored value cannot be decrypted with this key (a different HELPLINE_DATA_KEY, or damaged data)."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"helpline-data-key", info=purpose).derive(secret)


def decode_secret(text: str) -> bytes:
    """The secret from its environment form: URL-safe base64 of at least 32 random bytes."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError) as exc:
        raise DataKeyError("HELPLINE_DATA_KEY is not URL-safe base64 (make one: helpline keygen)") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise DataKeyError(f"HELPLINE_DATA_KEY must hold at least {MIN_SECRET_BYTES} bytes (make one: helpline keygen)")
    return raw


def new_secret() -> str:
    """A fresh secret in its environment form."""
    return base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode().rstrip("=")


class DataCipher:
    """Encrypts, decrypts and hashes personal values with keys derived from one secret."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"encrypt v1")))
        self._hash_key = _derive(secret, b"lookup v1")

    def encrypt(self, text: str) -> str:
        return TOKEN_PREFIX + self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        if not token.startswith(TOKEN_PREFIX):
            raise DecryptionError("not an encrypted value")
        try:
            return self._fernet.decrypt(token[len(TOKEN_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise DecryptionError("this value was encrypted with another key, or is damaged") from None

    def digest(self, text: str) -> str:
        """The keyed hash of a normalised value: 64 hex characters, the same for the same value and key."""
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()


def _key_file_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_secret() + "\n")
    return decode_secret(path.read_text().strip())


def load_secret(database_url: str, environ: dict[str, str] | None = None, key_file: Path = DEFAULT_KEY_FILE) -> bytes:
    """The secret from HELPLINE_DATA_KEY; for an embedded SQLite database only, from (or into) `key_file`."""
    env = os.environ if environ is None else environ
    text = env.get("HELPLINE_DATA_KEY", "").strip()
    if text:
        return decode_secret(text)
    if make_url(database_url).get_backend_name() != "sqlite":
        raise DataKeyError(
            "DATABASE_URL is set but HELPLINE_DATA_KEY is not: the 身份证号 in that database are encrypted with it. "
            "Make one with `helpline keygen`, keep it in the service's environment and in a safe place"
        )
    return _key_file_secret(key_file)


_cipher: DataCipher | None = None
_lock = threading.Lock()


def configure(cipher: DataCipher | None) -> None:
    """Set the process's cipher (at start-up, with the runtime); None forgets it (tests)."""
    global _cipher
    _cipher = cipher


def cipher() -> DataCipher:
    """The process's cipher; built from the environment on first use when start-up did not configure one."""
    global _cipher
    if _cipher is None:
        with _lock:
            if _cipher is None:
                from actions.settings import Settings

                _cipher = DataCipher(load_secret(Settings.from_env().database_url))
    return _cipher


def current() -> DataCipher | None:
    """The configured cipher, if any (to restore it after a temporary one)."""
    return _cipher
