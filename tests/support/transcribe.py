"""Amazon Transcribe batch output (the shape of ../shared/fixtures/voice/aws-transcribe-diarization.json:
results.transcripts, results.speaker_labels.segments, results.items with one entry per word and
punctuation mark) for any dialogue, and for a whole hour of one, as a contact centre's long calls
produce (~2.3 MB of JSON)."""

from __future__ import annotations

import copy
import json
import re

from tests.conftest import FIXTURES

VOICE = FIXTURES / "voice"


def _fixture() -> dict:
    return json.loads((VOICE / "aws-transcribe-diarization.json").read_text(encoding="utf-8"))


def transcribe_json(turns: list[tuple[str, str]], *, words_per_second: float = 2.5, pause: float = 0.6) -> dict:
    """The Transcribe document of `turns` ((speaker label, what they said) each), timed at a
    speaking pace, in the fixture's own shape (its job fields kept)."""
    doc = copy.deepcopy(_fixture())
    items, segments, clock = [], [], 0.5
    step = 1.0 / words_per_second
    for speaker, said in turns:
        seg_start, seg_items = clock, []
        for token in re.findall(r"[\w'’-]+|[.,?!]", said):
            if token in ".,?!":
                items.append({"speaker_label": speaker, "alternatives": [{"confidence": "0.0", "content": token}],
                              "type": "punctuation"})
                continue
            start, end = f"{clock:.2f}", f"{clock + step * 0.9:.2f}"
            items.append({"start_time": start, "speaker_label": speaker, "end_time": end,
                          "alternatives": [{"confidence": "0.998", "content": token}], "type": "pronunciation"})
            seg_items.append({"start_time": start, "speaker_label": speaker, "end_time": end})
            clock += step
        segments.append({"start_time": f"{seg_start:.2f}", "speaker_label": speaker, "end_time": f"{clock:.2f}",
                         "items": seg_items})
        clock += pause
    results = doc["results"]
    results["transcripts"] = [{"transcript": " ".join(said for _, said in turns)}]
    results["speaker_labels"] = {"channel_label": "ch_0", "speakers": len({s for s, _ in turns}), "segments": segments}
    results["items"] = items
    return doc


def _sentences() -> list[str]:
    """Real spoken sentences from the voice fixtures, to say over and over."""
    out = [_fixture()["results"]["transcripts"][0]["transcript"]]
    pca = json.loads((VOICE / "aws-pca-testfile.json").read_text(encoding="utf-8"))
    out += [s["DisplayText"] for s in pca["SpeechSegments"] if len(s["DisplayText"].split()) > 3]
    return out


def hour_long_call(minutes: float = 60.0) -> dict:
    """A two-speaker call of `minutes` at ~150 words a minute, turns of a sentence or two."""
    sentences, turns, words, i = _sentences(), [], 0, 0
    target = int(minutes * 150)
    while words < target:
        said = " ".join(sentences[(i + k) % len(sentences)] for k in range(1 + i % 2))
        turns.append(("spk_0" if i % 2 == 0 else "spk_1", said))
        words += len(said.split())
        i += 1
    return transcribe_json(turns, words_per_second=2.75)
