"""Bytes -> str for email bodies and headers, whatever charset they claim.

Mail in the wild lies about its charset: GB2312 labels on GBK/GB18030 text, Big5 on Big5-HKSCS,
Shift_JIS on Microsoft's cp932, iso-8859-1 on UTF-8, "unknown-8bit", or nothing at all. The order
here: the declared charset read as the superset real mailers mean by it; UTF-8 (which random
legacy bytes almost never are, so valid UTF-8 is trusted over a single-byte label); charset
detection (charset-normalizer); last, windows-1252/latin-1, which never fail. Nothing raises.
"""

from __future__ import annotations

import codecs
import re

# Labels mailers use -> the codec that decodes what they actually send (WHATWG-style supersets).
_SUPERSETS: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gb231280": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-euc-cn": "gb18030",
    "chinese": "gb18030",
    "csgb2312": "gb18030",
    "iso-ir-58": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "cp950": "cp950",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "s-jis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "x-ms-cp932": "cp932",
    "euc-jp": "euc_jis_2004",
    "x-euc-jp": "euc_jis_2004",
    "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext",
    "euc-kr": "cp949",
    "euckr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "korean": "cp949",
    "cskscs56011987": "cp949",
    "windows-949": "cp949",
    "uhc": "cp949",
    "iso-2022-kr": "iso2022_kr",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    # Browsers and mailers mean windows-1252 when they say latin-1 or ASCII.
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-8-i": "iso8859_8",
    "logical": "iso8859_8",
    "visual": "iso8859_8",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "koi8": "koi8_r",
    "koi8r": "koi8_r",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
}

# When the codec above fails on the bytes, these are tried next, before guessing.
_NEXT_TRIES: dict[str, tuple[str, ...]] = {
    "cp1252": ("latin-1",),
    "koi8_r": ("koi8_u",),
    "iso2022_jp_ext": ("iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"),
    "euc_jis_2004": ("euc_jp",),
    "big5hkscs": ("cp950",),
    "cp950": ("big5hkscs",),
}

# Codecs whose bytes are pure ASCII: the ASCII fast path must not skip them.
_SEVEN_BIT = ("iso2022", "utf_7", "hz", "utf_16", "utf_32")
_UTF_FAMILY = {"utf-8", "utf-8-sig", "utf_8", "utf_8_sig"}
# Codecs that map every byte to something: decoding never fails, so valid UTF-8 is preferred.
_SINGLE_BYTE_PREFIXES = ("cp125", "latin", "iso8859", "koi8", "mac_", "cp874", "cp437", "cp85", "cp86", "tis")

# What detection may answer: the charsets mail is actually written in. Left open, the detector
# happily reads short Cyrillic or Latin text as Shift_JIS or cp1006.
_DETECTABLE = [
    "utf_8", "cp1252", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "koi8_u", "iso8859_5",
    "cp1253", "iso8859_7", "cp1254", "cp1255", "cp1256", "cp1257", "cp874", "mac_roman",
    "gb18030", "big5hkscs", "cp932", "euc_jp", "iso2022_jp", "cp949",
]

_NOT_CHARSETS = {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "charmap", "mbcs", "oem"}

_codec_cache: dict[str, str | None] = {}


def codec_for(label: str | None) -> str | None:
    """The Python codec name to decode a charset label with, or None for unknown labels."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _codec_cache:
        return _codec_cache[key]
    # RFC 2231 language suffix (utf-8*en) and junk after the name.
    name = key.split("*", 1)[0].strip()
    codec = _SUPERSETS.get(name)
    if codec is None and name:
        try:
            info = codecs.lookup(name)
        except (LookupError, ValueError, TypeError):
            codec = None
        else:
            # codecs.lookup also knows base64, rot13, "undefined"...: not charsets.
            if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS:
                codec = _SUPERSETS.get(info.name, info.name)
                if codec in ("latin-1", "iso8859-1", "ascii"):
                    codec = "cp1252"
    if len(_codec_cache) < 4096:
        _codec_cache[key] = codec
    return codec


def _is_single_byte(codec: str) -> bool:
    norm = codec.replace("-", "").replace("_", "")
    return codec.startswith(_SINGLE_BYTE_PREFIXES) or norm.startswith(("cp125", "iso8859", "koi8", "latin"))


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few broken sequences (a truncated character, one stray byte): decoded with
    replacement characters when the valid multi-byte characters clearly dominate."""
    text = data.decode("utf-8", "replace")
    replaced = text.count("\ufffd")
    bad = replaced - data.count(b"\xef\xbf\xbd")
    if bad <= 0:
        return text
    # Non-ASCII characters other than U+FFFD, counted in C (a part can be megabytes).
    good = len(text) - len(text.encode("ascii", "ignore")) - replaced
    if good >= 3 * bad and good >= 2:
        return text
    return None


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        matches = list(from_bytes(data[:65536], cp_isolation=_DETECTABLE))
    except Exception:  # noqa: BLE001 - a detector bug must not lose the message
        return None
    if not matches or not matches[0].encoding:
        return None
    best = matches[0]
    codec = best.encoding
    # Short Western texts fit cp1250, cp1252 and cp1257 equally well; windows-1252 is by far the
    # most common undeclared charset in mail, so it wins ties.
    for match in matches:
        if (match.percent_chaos, match.percent_coherence) != (best.percent_chaos, best.percent_coherence):
            break
        if "cp1252" in match.could_be_from_charset:
            codec = "cp1252"
            break
    codec = codec_for(codec) or codec
    try:
        return data.decode(codec, "replace")
    except LookupError:
        return None


def decode(data: bytes, declared: str | None = None, *, detect: bool = True) -> tuple[str, bool]:
    """Decode bytes labelled with `declared` (may be None, wrong or unknown).

    Returns (text, fallback): fallback is True when the text was not read with the declared
    charset (or its superset), i.e. a mislabelled, unknown or missing charset was worked around.
    """
    if not data:
        return "", False
    codec = codec_for(declared)
    if data.isascii():
        if codec is None or not codec.replace("-", "_").startswith(_SEVEN_BIT):
            if b"\x1b$" in data or b"\x1b(" in data:
                text = _strict(data, "iso2022_jp_ext") or _strict(data, "iso2022_jp_2")
                if text is not None:
                    return text, codec is None or not codec.startswith("iso2022")
            return data.decode("ascii"), False
    if codec is not None:
        if codec in _UTF_FAMILY:
            text = _strict(data, "utf-8")
            if text is not None:
                return text, False
        else:
            if _is_single_byte(codec):
                # Valid multi-byte UTF-8 under a single-byte label is a mislabel: a real latin-1 or
                # cp1251 text is essentially never valid UTF-8.
                text = _strict(data, "utf-8")
                if text is not None:
                    return text, True
            text = _strict(data, codec)
            if text is not None:
                if not _is_single_byte(codec) and _looks_utf8_instead(data):
                    return data.decode("utf-8"), True
                return text, False
            for alt in _NEXT_TRIES.get(codec, ()):
                text = _strict(data, alt)
                if text is not None:
                    return text, alt != "latin-1" or codec != "cp1252"
            text = _strict(data, "utf-8")
            if text is not None:
                return text, True
    else:
        text = _strict(data, "utf-8")
        if text is not None:
            return text, declared is not None
    text = mostly_utf8(data)
    if text is not None:
        return text, True
    if codec is not None:
        # A few bytes the declared charset does not define: it is still the best guess.
        text = data.decode(codec, "replace")
        if text.count("\ufffd") * 20 <= len(text):
            return text, True
    if detect:
        text = _detect(data)
        if text is not None:
            return text, True
    return _last_resort(data), True


def _last_resort(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _looks_utf8_instead(data: bytes) -> bool:
    """A multi-byte legacy label (GB18030 decodes almost anything) on bytes that are valid UTF-8
    with several multi-byte characters: the label is wrong."""
    if len(_UTF8_MULTIBYTE.findall(data)) < 3:
        return False
    return _strict(data, "utf-8") is not None


def decode_header_bytes(data: bytes, hint: str | None = None) -> tuple[str, bool]:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a legacy charset sent unencoded): UTF-8 first,
    then the charset of the message body as a hint, then detection for longer values."""
    if data.isascii():
        return data.decode("ascii"), False
    text = _strict(data, "utf-8")
    if text is not None:
        return text, False
    codec = codec_for(hint)
    if codec is not None and codec not in _UTF_FAMILY:
        text = _strict(data, codec)
        if text is not None and not (_is_single_byte(codec) and codec == "cp1252" and _has_c1(text)):
            return text, True
    text = mostly_utf8(data)
    if text is not None:
        return text, True
    if len(data) - len(data.decode("ascii", "ignore")) >= 6:
        text = _detect(data)
        if text is not None:
            return text, True
    return _last_resort(data), True


_C1 = re.compile("[\x80-\x9f]")


def _has_c1(text: str) -> bool:
    return _C1.search(text) is not None
