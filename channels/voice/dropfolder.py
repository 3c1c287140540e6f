"""The drop folder (settings.voice_drop_dir): transcript files from systems that export files.

What to put in it (top level only; sub-folders are not read):

    CALL.vtt + CALL.call.json   a transcript in any supported format (.vtt, .srt, .json, .txt)
                                and beside it a sidecar: the call record, the same JSON that
                                POST /api/v1/calls takes, without "turns"/"transcript".
    CALL.call.json              alone: a complete call, the record with "turns" or "transcript".
    +442079460958_ANYTHING.vtt  no sidecar: an inbound call from the number at the start of the
                                name (+ or 00 and the country code), ended by "_", "-", "." or a
                                space. The call id is the file name without its extension, the
                                call's start the file's modification time.

Write a file under a temporary name (".x", "x.tmp", "x.part") and rename it when complete, or at
least write the sidecar first: a file is taken once it has not changed for settle_seconds, and a
transcript with neither sidecar nor number waits orphan_seconds for its sidecar before it is
rejected. Taken files are spooled (key "file:NAME:SHA256") and moved to done/; files that cannot
be read are recorded as rejected (GET /api/v1/inbound/rejected) and moved to rejected/ with a
NAME.reason.txt beside them. The same file dropped again is recognised by its key, the same call
by its call id: neither is stored twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from channels.voice.call import call_message, transcript_of
from channels.voice.parse import parse_transcript
from channels.voice.record import Call, call_of, e164, record_from_json
from hub.contract import clock
from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage

SIDECAR = ".call.json"
DONE = "done"
REJECTED = "rejected"
_IGNORED_PREFIXES = (".", "~")
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", ".reason.txt")
_NUMBER_IN_NAME = re.compile(r"^((?:\+|00)[0-9][0-9\-]{5,24})(?=[_\-. ]|$)")


@dataclass
class Item:
    """One thing to take from the folder: the files that go together, and what to spool."""

    name: str
    files: list[Path]
    error: str | None = None
    payload: dict = field(default_factory=dict)
    raw: bytes | None = None
    sha256: str = ""

    @property
    def key(self) -> str:
        return f"file:{self.name}:{self.sha256}"


def _ignored(name: str) -> bool:
    lower = name.lower()
    return name.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def number_in_name(name: str) -> str | None:
    match = _NUMBER_IN_NAME.match(name)
    return match.group(1) if match else None


def pending(folder: Path, *, now: float | None = None, settle_seconds: float = 2.0,
            orphan_seconds: float = 60.0) -> list[Item]:
    """What the folder holds that is ready to be taken, oldest first (nothing is read yet). Ages
    are measured against `now`, by default the folder's own clock (folder_time)."""
    entries: dict[str, tuple[Path, float]] = {}
    for path in folder.iterdir():
        if _ignored(path.name):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            entries[path.name] = (path, stat.st_mtime)
    if not entries:
        return []
    now = folder_time(folder) if now is None else now
    settled = {name: v for name, v in entries.items() if now - v[1] >= settle_seconds}
    sidecars = {name[: -len(SIDECAR)]: v for name, v in entries.items() if name.lower().endswith(SIDECAR)}
    items: list[tuple[float, Item]] = []
    paired: set[str] = set()
    for name, (path, mtime) in settled.items():
        if name.lower().endswith(SIDECAR):
            continue
        stem = _stem(name)
        if stem in sidecars:
            if stem in paired:
                continue  # one transcript per sidecar; the second waits, then is an orphan
            side_path, side_mtime = sidecars[stem]
            paired.add(stem)
            if now - side_mtime >= settle_seconds:
                items.append((mtime, Item(name=name, files=[path, side_path])))
            continue
        if number_in_name(name) is not None:
            items.append((mtime, Item(name=name, files=[path])))
        elif now - mtime >= orphan_seconds:
            items.append((mtime, Item(name=name, files=[path], error=(
                f"no sidecar {stem}{SIDECAR} beside {name} and no caller number at the start of its name "
                "(e.g. +442079460958_call.vtt)"))))
    transcript_stems = {_stem(name) for name in entries if not name.lower().endswith(SIDECAR)}
    for stem, (path, mtime) in sidecars.items():
        if stem in transcript_stems or path.name not in settled:
            continue
        # A sidecar alone is a complete call if it holds the transcript; else its transcript file
        # may still be on its way.
        if now - mtime < orphan_seconds and not _holds_transcript(path):
            continue
        items.append((mtime, Item(name=path.name, files=[path])))
    return [item for _, item in sorted(items, key=lambda pair: (pair[0], pair[1].name))]


def folder_time(folder: Path) -> float:
    """Now by the folder's own clock: the modification time of a file created there (and removed).
    File times come from the file system, on a share from the file server, whose clock may be
    behind or ahead of this machine's (or of hub.contract.clock, which a test or a replay may pin): measured
    against it, a file still being written never looks settled and a finished one never waits for
    the clocks to agree. This machine's clock when the folder cannot be written."""
    try:
        fd, name = tempfile.mkstemp(prefix=".servicehub-clock-", dir=folder)  # ignored: a leading dot
    except OSError:
        return time.time()
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)


def _holds_transcript(path: Path) -> bool:
    try:
        if path.stat().st_size > 1_048_576:
            return True  # no mere call record is that large: take it (to read or reject) now
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return True  # unreadable: take it now, to reject it with the reason
    return not isinstance(data, dict) or "turns" in data or "transcript" in data


def load(item: Item, *, max_bytes: int) -> Item:
    """Read the item's files into the payload and raw bytes to spool; problems become item.error."""
    main = item.files[0]
    try:
        size = main.stat().st_size
        if size > max_bytes:
            raise RejectedInput(f"{item.name} is {size} bytes; transcript files over {max_bytes} bytes are not taken")
        raw = main.read_bytes()
        item.raw = raw
        item.sha256 = hashlib.sha256(raw).hexdigest()
        received = datetime.fromtimestamp(main.stat().st_mtime, UTC).isoformat()
        if item.error:
            item.payload = {"file": item.name, "kind": "orphan", "received_at": received}
            return item
        if main.name.lower().endswith(SIDECAR):
            item.payload = {"file": item.name, "kind": "sidecar", "record": _json(raw, item.name), "received_at": received}
        elif len(item.files) > 1:
            side = item.files[1]
            side_raw = side.read_bytes()
            if len(side_raw) > max_bytes:
                raise RejectedInput(f"the sidecar {side.name} is over {max_bytes} bytes")
            item.payload = {
                "file": item.name, "kind": "pair", "sidecar_file": side.name,
                "record": _json(side_raw, side.name), "received_at": received,
            }
        else:
            item.payload = {"file": item.name, "kind": "named", "received_at": received}
    except RejectedInput as exc:
        item.error = exc.message
        item.payload = item.payload or {"file": item.name, "kind": "unreadable"}
    return item


def _json(raw: bytes, name: str):
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RejectedInput(f"the sidecar {name} is not valid JSON: {exc}") from None


def message_from_file(payload: dict, raw: bytes | None) -> InboundMessage:
    """The message for a spooled drop-folder item. Raises RejectedInput with the reason."""
    name = str(payload.get("file") or "")
    kind = payload.get("kind")
    source = f"file:{name}"
    if kind == "pair":
        record = record_from_json(payload.get("record"), f"sidecar {payload.get('sidecar_file')}", transcript_file=name)
        return call_message(call_of(record), transcript_of(record, raw, filename=name), raw=raw, source=source)
    if kind == "sidecar":
        record = record_from_json(payload.get("record"), f"sidecar {name}")
        return call_message(call_of(record), transcript_of(record), raw=raw, source=source)
    if kind == "named":
        number = number_in_name(name)
        if number is None or raw is None:
            raise RejectedInput(f"{name}: no caller number at the start of the file name")
        customer = e164(number, f"the number in the file name {name!r}")
        try:
            started = datetime.fromisoformat(str(payload.get("received_at")))
        except ValueError:
            started = clock.now()
        call = Call(call_id=_stem(name), customer_number=customer, direction="inbound", started_at=started, caller=customer)
        return call_message(call, parse_transcript(raw, name), raw=raw, source=source)
    raise RejectedInput(f"{name}: not a drop-folder item this hub can read (kind {kind!r})")


def _free(target: Path) -> Path:
    if not target.exists():
        return target
    base, dot, ext = target.name.partition(".")
    n = 1
    while True:
        candidate = target.with_name(f"{base}~{n}{dot}{ext}")
        if not candidate.exists():
            return candidate
        n += 1


def move(item: Item, folder: Path, *, reason: str | None = None) -> list[Path]:
    """Move the item's files to done/, or to rejected/ with NAME.reason.txt when reason is set."""
    target_dir = folder / (REJECTED if reason is not None else DONE)
    target_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in item.files:
        if not path.exists():
            continue
        target = _free(target_dir / path.name)
        os.replace(path, target)
        moved.append(target)
    if reason is not None and moved:
        moved[0].with_name(moved[0].name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    return moved
