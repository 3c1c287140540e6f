"""The installation's secret, and the Message-IDs the hub signs with it so that only ids it really
gave out thread a mail into a conversation.

Part of the contract, like hub.contract.messages: the email channel signs the Message-IDs of what it sends,
the hub's threading checks the ids a mail names, and both use this module, never each other.

One secret per installation: 32 random bytes in the data dir (`secret.key`, mode 0600), made on
first start and never in the repository. Each use derives its own key from it (`derive_key`), so a
key that leaks from one use (a signed Message-ID is public) says nothing about another.

A Message-ID we sign reads `<sh2.<conversation>.<tag>.<mac>@<domain>>`: `tag` (40 bits) is stable
per outbox row, so a retry after a crash sends the same id again; `mac` is 120 bits of an
HMAC-SHA256 under the message-id key over the conversation and the tag, both base32. The domain is
left out of the MAC: a change of the support address must not orphan the threads of mail already
sent. Nobody without the secret can make an id that verifies, however well they know the
conversation and message numbers. The id stays short (under 78 characters with its header name
for a usual domain), so no mail software has a reason to fold or encode it.

Ids of the earlier unsigned form (`<servicehub.<conversation>.[<message>.]<hex20>@<domain>>`) are
"legacy": they stay in the customers' mailboxes and still thread, but only as the exact id of a
message the store holds and under the recipient rule of hub/ingest/threading_rules.py, like any
customer's own id, because anyone who knows a customer's address could compute one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from enum import Enum
from pathlib import Path

SECRET_BYTES = 32
SECRET_FILE = "secret.key"
MESSAGE_ID_PURPOSE = "email message-id v2"

_PREFIX = "sh2"
_TAG_BYTES, _MAC_BYTES = 5, 15  # base32: 8 and 24 characters, no padding
_SIGNED = re.compile(r"^sh2\.(\d{1,18})\.([a-z2-7]{8})\.([a-z2-7]{24})$")
_LEGACY = re.compile(r"^servicehub\.\d{1,18}\.(?:\d{1,18}\.)?[0-9a-f]{20}$")


class IdKind(str, Enum):
    """What an external id is to the hub."""

    signed = "signed"  # one of ours, and its MAC verifies
    legacy = "legacy"  # one of ours from before ids were signed: only as good as the stored message it names
    forged = "forged"  # has the shape of one of ours but does not verify: ignored
    foreign = "foreign"  # somebody else's (a customer's mail client's): matched only against the store


def load_or_create_secret(path: Path) -> bytes:
    """The installation secret in `path`, created (mode 0600, 32 random bytes, hex) on first use.

    O_EXCL makes concurrent first starts agree on one secret: the loser reads the winner's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for _ in range(50):  # another process may be between creating and writing it
        text = path.read_text().strip()
        if len(text) >= 2 * SECRET_BYTES:
            try:
                return bytes.fromhex(text)
            except ValueError:
                break
        time.sleep(0.02)
    raise RuntimeError(f"{path} does not hold a hex secret of {SECRET_BYTES} bytes; delete it to have a new one made")


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one use of the installation secret."""
    return hmac.new(secret, f"servicehub key|{purpose}".encode(), hashlib.sha256).digest()


def message_id_key(data_dir: Path) -> bytes:
    """The key Message-IDs are signed and checked with, from the secret in `data_dir`."""
    return derive_key(load_or_create_secret(Path(data_dir) / SECRET_FILE), MESSAGE_ID_PURPOSE)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower()


def _mac(key: bytes, conversation: str, tag: str) -> str:
    digest = hmac.new(key, f"{_PREFIX}|{conversation}|{tag}".encode("ascii"), hashlib.sha256).digest()
    return _b32(digest[:_MAC_BYTES])


def sign_message_id(key: bytes, *, conversation_id: int, seed: str, domain: str) -> str:
    """Our Message-ID for one outgoing mail: the same `seed` (the outbox row's idempotency key)
    always gives the same id."""
    conversation = str(int(conversation_id))
    tag = _b32(hashlib.sha256(f"{seed}|{conversation}".encode()).digest()[:_TAG_BYTES])
    return f"<{_PREFIX}.{conversation}.{tag}.{_mac(key, conversation, tag)}@{domain}>"


def _local_part(external_id: str) -> str:
    value = external_id.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.rpartition("@")[0]


def classify(key: bytes | None, external_id: str) -> IdKind:
    """What `external_id` is; constant time in the MAC. Without a key nothing can verify, so an id
    of our signed shape counts as forged. Any other shape is somebody else's (foreign)."""
    local = _local_part(external_id)
    match = _SIGNED.match(local)
    if match is not None:
        if key is None:
            return IdKind.forged
        conversation, tag, mac = match.groups()
        return IdKind.signed if hmac.compare_digest(mac, _mac(key, conversation, tag)) else IdKind.forged
    if _LEGACY.match(local):
        return IdKind.legacy
    return IdKind.foreign
