"""Reading a form's submission from a request body within its limits: the form's own fields only,
files cut at their limit (so the visitor gets an error next to the field), the whole body bounded."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_TYPE

from channels.webform.form import HONEYPOT_FIELD, TOKEN_FIELD, Form
from channels.webform.validation import MAX_TEXTAREA, UploadedFile

# A text part is never longer than this (a textarea's limit in 4-byte characters): more is cut,
# and validation then tells the visitor the text is too long.
TEXT_PART_BYTES = 4 * MAX_TEXTAREA
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    pass


class UnreadableBody(Exception):
    pass


@dataclass
class Posted:
    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


def body_limit(form: Form, limits) -> int:
    """The most a submission may send: the text budget plus, per file field, twice the file
    limit, so a file somewhat over its limit gets an error next to its field, not a bare 413."""
    return limits.max_request_bytes + 2 * limits.max_upload_bytes * len(form.file_fields)


async def _read_part(part: BodyPartReader, keep: int, budget: int) -> tuple[bytes, bool, int]:
    """(the first `keep` bytes, whether there were more, bytes read). Reads the whole part so the
    next one can be read, but raises BodyTooLarge past `budget`."""
    kept = bytearray()
    seen = 0
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return bytes(kept), seen > keep, seen
        seen += len(chunk)
        if seen > budget:
            raise BodyTooLarge()
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]


async def read_submission(request: web.Request, form: Form, limits) -> Posted:
    """limits: max_request_bytes (the text budget) and max_upload_bytes (per file)."""
    """The form's fields from the body; parts the form does not define are read and dropped."""
    limit = body_limit(form, limits)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    files = {f.name for f in form.file_fields}
    texts = {f.name for f in form.fields if f.type != "file"} | {TOKEN_FIELD, HONEYPOT_FIELD}
    posted = Posted()
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            data = await request.post()  # bounded by the app's client_max_size
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge() from None
        for name in texts:
            value = data.get(name)
            if isinstance(value, str):
                posted.values[name] = value
        return posted
    if request.content_type != "multipart/form-data":
        raise UnreadableBody("the form must be sent as multipart/form-data")
    try:
        reader = await request.multipart()
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise UnreadableBody("nested multipart bodies are not accepted")
            name = part.name or ""
            budget = limit - total
            if name in files and name not in posted.files:
                data, over, seen = await _read_part(part, limits.max_upload_bytes, budget)
                posted.files[name] = UploadedFile(
                    filename=part.filename,
                    content_type=part.headers.get(CONTENT_TYPE),
                    data=b"" if over else data,
                    too_large=over,
                )
            elif name in texts and name not in posted.values:
                data, _, seen = await _read_part(part, TEXT_PART_BYTES, budget)
                posted.values[name] = data.decode("utf-8", "replace")
            else:
                _, _, seen = await _read_part(part, 0, budget)
            total += seen
    except (ValueError, AssertionError) as exc:  # aiohttp's words for a malformed multipart body
        raise UnreadableBody(str(exc) or "malformed multipart body") from None
    return posted
