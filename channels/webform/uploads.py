"""Checking uploaded files by what they contain, not by what the browser (or a bot) says they are.

The declared content type and the file name come from the client and can say anything; an
"image/png" that is really an HTML page would be stored and later opened by an agent. So the type
is read from the first bytes (magic numbers); a file whose content is not an accepted type, or
that claims to be another type than it is, is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from hub.contract.i18n import gettext as _

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)

# Names browsers and tools use for the same type.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}
# Declared types that claim nothing: the content decides.
_UNSPECIFIC = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
# Control characters that never occur in a text file a person wrote.
_BINARY_CONTROLS = set(range(0x00, 0x09)) | {0x0B} | set(range(0x0E, 0x20)) - {0x1B}


@dataclass(frozen=True)
class UploadProblem:
    """Why a file is refused, in words for the person who chose it."""

    message: str


def sniff(data: bytes) -> str | None:
    """The content type the bytes are, among the ones this module knows, or None."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if _is_text(data):
        return "text/plain"
    return None


def _is_text(data: bytes) -> bool:
    sample = data[:65536]
    if any(b in _BINARY_CONTROLS for b in sample):
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still text.
        return len(data) > len(sample) and exc.start >= len(sample) - 3
    return True


def normalise_declared(content_type: str | None) -> str:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def check(data: bytes, declared: str | None, allowed: list[str] | tuple[str, ...], max_bytes: int) -> tuple[str, UploadProblem | None]:
    """(the content type to store, None) for an acceptable file, else (…, the problem)."""
    if len(data) > max_bytes:
        return "", UploadProblem(_("The file is larger than %(size)s. Choose a smaller file.") % {"size": human_size(max_bytes)})
    if not data:
        return "", UploadProblem(_("The file is empty. Choose another file."))
    accepted = {normalise_declared(t) for t in allowed}
    actual = sniff(data)
    if actual is None or actual not in accepted:
        return "", UploadProblem(_("This type of file is not accepted. Choose a file of type: %(types)s.") % {"types": describe_types(allowed)})
    claimed = normalise_declared(declared)
    if claimed not in _UNSPECIFIC and claimed != actual:
        return "", UploadProblem(
            _("The file's content does not match its type (%(claimed)s declared, but it is %(actual)s). Choose another file.")
            % {"claimed": claimed, "actual": actual}
        )
    return actual, None


_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "application/pdf": "PDF",
    "text/plain": "plain text",
}


def describe_types(allowed) -> str:
    return ", ".join(_NAMES.get(normalise_declared(t), t) for t in allowed)


def human_size(n: int) -> str:
    if n >= 1_048_576 and n % 1_048_576 == 0:
        return f"{n // 1_048_576} MB"
    if n >= 1_048_576:
        return f"{n / 1_048_576:.1f} MB"
    if n >= 1024:
        return f"{n // 1024} KB"
    return _("%(num)s bytes") % {"num": n}


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str | None, content_type: str) -> str:
    """The client's file name without a path, control or shell characters, at most 200 chars."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    if not base:
        ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "application/pdf": ".pdf"}.get(content_type, ".txt")
        base = "attachment" + ext
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:200]
    return base
