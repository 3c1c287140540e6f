"""channels.voice.parse against real transcript outputs (shared/fixtures/voice) and small cases of
the formats that have no public sample file here (Call Analytics, Contact Lens, SRT, plain text)."""

from __future__ import annotations

import copy
import json

import pytest

from channels.voice import (
    FORMATS,
    MalformedTranscript,
    Turn,
    UnknownTranscriptFormat,
    parse,
    parse_transcript,
    render,
)
from channels.voice.transcript import customer_text
from hub.contract.errors import RejectedInput
from tests.conftest import FIXTURES

VOICE = FIXTURES / "voice"


def read(name: str) -> bytes:
    return (VOICE / name).read_bytes()


# --- every fixture: format, speakers, first and last turn ---------------------------------------

CASES = [
    # file, format, turns, speakers, (first speaker, start, end, text start), (last speaker, start, end, text end)
    ("aws-pca-testfile.json", "aws_pca", 12, {"Agent", "Customer"},
     ("Agent", 0.04, 0.25, "MM."), ("Customer", 27.04, 28.96, "Do you want me to just tell you the meeting I'd be?")),
    ("aws-transcribe-diarization.json", "aws_transcribe", 2, {"spk_0", "spk_1"},
     ("spk_0", 4.87, 6.88, "I've been on hold for an hour."), ("spk_1", 8.49, 9.24, "Sorry about that.")),
    ("deepgram-captions/dg_speakers.json", "deepgram", 22, {"Speaker 0", "Speaker 1", "Speaker 2"},
     ("Speaker 0", 3.04, 3.54, "And,"), ("Speaker 1", 162.605, 163.105, "Copy.")),
    ("deepgram-captions/dg_speakers_no_utterances.json", "deepgram", 10, {"Speaker 0", "Speaker 1", "Speaker 2"},
     ("Speaker 0", 3.04, 17.279999, "And, Jessica, Christina, we are so proud of you."),
     ("Speaker 1", 156.39, 163.105, "We need it in pouch and DCM cover clothes. Copy.")),
    ("deepgram-captions/dg_utterances.json", "deepgram", 6, {None},
     (None, 0.08, 3.22, "Yeah. As as much as, it's worth celebrating,"),
     (None, 22.3, 25.439999, "and didn't get the same opportunities that we have today.")),
    ("deepgram-captions/dg_transcription.json", "deepgram", 1, {None},
     (None, 0.08, 25.439999, "Yeah. As as much as, it's worth celebrating, the first, spacewalk,"),
     (None, 0.08, 25.439999, "the same opportunities that we have today.")),
    ("deepgram-captions/dg_whisper_transcription.json", "deepgram", 1, {None},
     (None, 0.06, 25.56, "yeah as much as it's worth celebrating"),
     (None, 0.06, 25.56, "didn't get the same opportunities that we have today")),
    ("deepgram-captions/assemblyai_transcription.json", "assemblyai", 1, {"Speaker A"},
     ("Speaker A", 0.17, 25.14, "Yeah. As much as it's worth celebrating the first spacewalk"),
     ("Speaker A", 0.17, 25.14, "didn't get the same opportunities that we have today.")),
    ("deepgram-captions/assemblyai_utterances.json", "assemblyai", 1, {"Speaker A"},
     ("Speaker A", 0.17, 25.14, "Yeah. As much as it's worth celebrating the first spacewalk"),
     ("Speaker A", 0.17, 25.14, "didn't get the same opportunities that we have today.")),
    ("deepgram-captions/whisper_timestamped.json", "whisper", 4, {None},
     (None, 0.12, 7.62, "Yeah, as much as it's worth celebrating the first spacewalk with an all-female team,"),
     (None, 19.82, 25.32, "who were skilled and qualified and didn't get the same opportunities that we have today.")),
    ("webvtt/teams_timeframe.vtt", "webvtt", 2, {"Yuri Bakulin", "Adrian Petrescu"},
     ("Yuri Bakulin", 0.0, 0.57, "There you go."), ("Adrian Petrescu", 0.21, 1.13, "Why hello there, Yuri.")),
    ("webvtt/sample.vtt", "webvtt", 16, {None},
     (None, 0.5, 7.0, "Caption text #1"), (None, 61.35, 64.3, "Caption text #16")),
]


@pytest.mark.parametrize("name, fmt, count, speakers, first, last", CASES, ids=[c[0] for c in CASES])
def test_every_fixture_parses_into_its_turns(name, fmt, count, speakers, first, last):
    found = parse_transcript(read(name), filename=name.rsplit("/", 1)[-1])
    assert found.format == fmt
    turns = found.turns
    assert len(turns) == count
    assert {t.speaker for t in turns} == speakers
    for turn, (speaker, start, end, text) in ((turns[0], first), (turns[-1], last)):
        assert turn.speaker == speaker
        assert turn.start == pytest.approx(start) and turn.end == pytest.approx(end)
        assert turn.text.startswith(text) or turn.text.endswith(text), turn.text
    assert all(t.text == t.text.strip() and t.text for t in turns)
    assert all(t.role in ("customer", "agent", "unknown") for t in turns)
    # The same turns whatever the document comes as: bytes, text, or (JSON) an object.
    assert parse(read(name).decode("utf-8")) == turns
    if name.endswith(".json"):
        assert parse(json.loads(read(name))) == turns


def test_post_call_analytics_roles_and_sentiment_come_from_the_file():
    turns = parse(read("aws-pca-testfile.json"))
    # The file's SpeakerLabels say spk_0 is the agent: they are followed as they are (even though
    # in this sample the "Customer" is the one who says "Thank you for calling").
    assert [t.role for t in turns] == ["agent", "customer"] * 6
    assert [t.sentiment for t in turns] == [
        None, "positive", "positive", "neutral", "neutral", "neutral",
        "positive", "positive", "neutral", "neutral", None, "neutral",
    ]
    assert turns[1] == Turn("customer", "Customer", 0.64, 3.7, "Thank you for calling Networks abc technical Support.", "positive")
    assert parse_transcript(read("aws-pca-testfile.json")).roles == "transcript"
    assert parse_transcript(read("aws-pca-testfile.json")).language == "en-US"


def test_numbered_speakers_get_no_role_by_position():
    # The customer speaks first here: a "first speaker is the agent" rule would get it backwards.
    found = parse_transcript(read("aws-transcribe-diarization.json"))
    assert [t.role for t in found.turns] == ["unknown", "unknown"]
    assert found.roles == "unknown"
    assert customer_text(found.turns) == ("I've been on hold for an hour.\nSorry about that.", "all turns")
    teams = parse(read("webvtt/teams_timeframe.vtt"))
    assert {t.role for t in teams} == {"unknown"}


def test_a_speaker_who_greets_like_an_agent_is_the_agent_and_the_other_the_customer():
    doc = json.loads(read("aws-transcribe-diarization.json"))
    doc["results"]["audio_segments"] = [
        {"id": 0, "transcript": "Thank you for calling Acme, how can I help?", "start_time": "0.5", "end_time": "2.9",
         "speaker_label": "spk_1", "items": []},
        {"id": 1, "transcript": "I've been on hold for an hour.", "start_time": "4.87", "end_time": "6.88",
         "speaker_label": "spk_0", "items": []},
    ]
    found = parse_transcript(doc)
    assert found.roles == "greeting"
    assert [(t.speaker, t.role) for t in found.turns] == [("spk_1", "agent"), ("spk_0", "customer")]
    assert customer_text(found.turns) == ("I've been on hold for an hour.", "customer turns")


def test_older_transcribe_output_takes_speakers_from_the_segments():
    doc = json.loads(read("aws-transcribe-diarization.json"))
    for item in doc["results"]["items"]:
        item.pop("speaker_label", None)
    turns = parse(doc)
    assert [(t.speaker, t.text) for t in turns] == [("spk_0", "I've been on hold for an hour."), ("spk_1", "Sorry about that.")]


def test_transcribe_channel_identification_merges_the_channels_by_time():
    doc = json.loads(read("aws-transcribe-diarization.json"))
    items = doc["results"].pop("items")
    doc["results"].pop("speaker_labels")
    doc["results"]["channel_labels"] = {
        "channels": [
            {"channel_label": "ch_1", "items": [i for i in items if i["speaker_label"] == "spk_1"]},
            {"channel_label": "ch_0", "items": [i for i in items if i["speaker_label"] == "spk_0"]},
        ],
        "number_of_channels": 2,
    }
    doc["results"]["items"] = []
    assert [(t.speaker, t.start, t.text) for t in parse(doc)] == [
        ("ch_0", 4.87, "I've been on hold for an hour."), ("ch_1", 8.49, "Sorry about that."),
    ]


CALL_ANALYTICS = {
    "JobName": "call-17",
    "LanguageCode": "en-US",
    "JobStatus": "COMPLETED",
    "Transcript": [
        {"Id": "a", "Content": "Thank you for calling. How may I help you?", "BeginOffsetMillis": 1200,
         "EndOffsetMillis": 3800, "ParticipantRole": "AGENT", "Sentiment": "NEUTRAL"},
        {"Id": "b", "Content": "My order 1234 never arrived and I am really annoyed.", "BeginOffsetMillis": 4100,
         "EndOffsetMillis": 8350, "ParticipantRole": "CUSTOMER", "Sentiment": "NEGATIVE"},
        {"Id": "c", "Content": "I'm sorry, let me check that for you.", "BeginOffsetMillis": 8900,
         "EndOffsetMillis": 11000, "ParticipantRole": "AGENT", "Sentiment": "MIXED"},
    ],
    "ConversationCharacteristics": {"TotalConversationDurationMillis": 11000},
}


def test_transcribe_call_analytics_participant_roles_and_sentiment():
    found = parse_transcript(CALL_ANALYTICS)
    assert found.format == "aws_call_analytics" and found.language == "en-US" and found.roles == "transcript"
    assert found.turns == [
        Turn("agent", "AGENT", 1.2, 3.8, "Thank you for calling. How may I help you?", "neutral"),
        Turn("customer", "CUSTOMER", 4.1, 8.35, "My order 1234 never arrived and I am really annoyed.", "negative"),
        Turn("agent", "AGENT", 8.9, 11.0, "I'm sorry, let me check that for you.", "mixed"),
    ]


def test_contact_lens_maps_participant_ids_to_roles():
    # The shape of Amazon Connect's documented example output file (Participants map ids to roles).
    doc = {
        "Version": "1.1.0",
        "Channel": "VOICE",
        "JobStatus": "COMPLETED",
        "LanguageCode": "en-US",
        "Participants": [
            {"ParticipantId": "cust-7f", "ParticipantRole": "CUSTOMER"},
            {"ParticipantId": "agent-2c", "ParticipantRole": "AGENT"},
        ],
        "Transcript": [
            {"BeginOffsetMillis": 160, "Content": "Just hello. My name is Peter and help.", "EndOffsetMillis": 4640,
             "Id": "t1", "ParticipantId": "cust-7f", "Sentiment": "NEUTRAL"},
            {"BeginOffsetMillis": 4640, "Content": "Hello. Peter, how can I help you?", "EndOffsetMillis": 6610,
             "Id": "t2", "ParticipantId": "agent-2c", "Sentiment": "NEUTRAL"},
            {"BeginOffsetMillis": 7370, "Content": "I want to cancel my plan subscription.", "EndOffsetMillis": 11190,
             "Id": "t3", "ParticipantId": "cust-7f", "Sentiment": "NEGATIVE"},
        ],
    }
    turns = parse(doc)
    assert [(t.role, t.start, t.sentiment) for t in turns] == [
        ("customer", 0.16, "neutral"), ("agent", 4.64, "neutral"), ("customer", 7.37, "negative"),
    ]
    assert customer_text(turns)[0] == "Just hello. My name is Peter and help.\nI want to cancel my plan subscription."


# --- text formats -------------------------------------------------------------------------------


def test_plain_text_agent_and_customer_lines():
    text = (
        "Agent: Thank you for calling Acme, this is Sam.\n"
        "Customer: Hi, my parcel hasn't arrived.\n"
        "  It was due on Monday.\n"
        "\n"
        "Agent: Let me check the tracking for you.\n"
    )
    found = parse_transcript(text, "call.txt")
    assert found.format == "text" and found.roles == "transcript"
    assert [(t.role, t.text) for t in found.turns] == [
        ("agent", "Thank you for calling Acme, this is Sam."),
        ("customer", "Hi, my parcel hasn't arrived. It was due on Monday."),
        ("agent", "Let me check the tracking for you."),
    ]
    assert all(t.start is None for t in found.turns)
    assert render(found.turns) == (
        "Agent: Thank you for calling Acme, this is Sam.\n"
        "Customer: Hi, my parcel hasn't arrived. It was due on Monday.\n"
        "Agent: Let me check the tracking for you."
    )


def test_plain_text_reads_back_the_dialogue_the_hub_renders():
    turns = [
        Turn("agent", "Yuri Bakulin", 3.2, 5.0, "Thank you for calling."),
        Turn("customer", "Customer", 7.9, 9.0, "My order is late."),
        Turn("unknown", "Speaker 2", 3725.0, 3726.0, "Hello?"),
    ]
    shown = render(turns)
    assert shown == "[00:03] Agent (Yuri Bakulin): Thank you for calling.\n[00:07] Customer: My order is late.\n[1:02:05] Speaker 2: Hello?"
    back = parse(shown)
    assert [(t.role, t.speaker, t.start, t.text) for t in back] == [
        ("agent", "Yuri Bakulin", 3.0, "Thank you for calling."),
        ("customer", "Customer", 7.0, "My order is late."),
        ("unknown", "Speaker 2", 3725.0, "Hello?"),
    ]


def test_webvtt_voices_named_by_role_and_two_voices_in_one_cue():
    vtt = (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:04.000\n<v Agent>Thank you for calling &amp; welcome.</v>\n\n"
        "00:00:04.500 --> 00:00:07.250\n<v.loud Customer>My <b>router</b> keeps dropping.</v>\n<v Agent>I see.</v>\n"
    )
    turns = parse(vtt.encode("utf-16"))  # a UTF-16 file with its BOM
    assert turns == [
        Turn("agent", "Agent", 1.0, 4.0, "Thank you for calling & welcome."),
        Turn("customer", "Customer", 4.5, 7.25, "My router keeps dropping."),
        Turn("agent", "Agent", 4.5, 7.25, "I see."),
    ]


def test_srt_with_speaker_labels_like_whisperx_writes():
    srt = (
        "1\n00:00:00,500 --> 00:00:02,000\n[SPEAKER_00]: Thanks for calling, how can I help?\n\n"
        "2\n00:00:02,400 --> 00:00:05,100\n[SPEAKER_01]: I need to change my delivery address.\n"
    )
    found = parse_transcript(srt, "call.srt")
    assert found.format == "srt" and found.roles == "greeting"
    assert [(t.speaker, t.role, t.start, t.end) for t in found.turns] == [
        ("SPEAKER_00", "agent", 0.5, 2.0), ("SPEAKER_01", "customer", 2.4, 5.1),
    ]


# --- what is not a transcript ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "Hello, I would like to complain about my order.",
        '{"id": 17, "status": "completed"}',
        {"results": {"something": []}},
        b"RIFF\x24\x08\x00\x00WAVEfmt ",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        "[1, 2, 3]",
        "{not json",
    ],
    ids=["prose", "json-string", "json-object", "wav", "png", "json-list", "broken-json"],
)
def test_an_unknown_format_is_refused_naming_the_supported_formats(data):
    with pytest.raises(UnknownTranscriptFormat) as caught:
        parse(data)
    assert isinstance(caught.value, RejectedInput)  # -> 422 in the API
    message = caught.value.message
    for name in ("WebVTT", "Amazon Transcribe", "Contact Lens", "Deepgram", "AssemblyAI", "Whisper", "'Agent: ...'"):
        assert name in message


def test_a_format_hint_the_content_contradicts_is_an_error():
    with pytest.raises(MalformedTranscript, match="not a Deepgram JSON document"):
        parse(CALL_ANALYTICS, format="deepgram")
    with pytest.raises(MalformedTranscript):
        parse(read("webvtt/sample.vtt"), format="text")
    with pytest.raises(UnknownTranscriptFormat, match="use one of"):
        parse("Agent: hi", format="mp3")
    # A .vtt name with other content: the content is not WebVTT.
    with pytest.raises(MalformedTranscript):
        parse("Agent: hi", "call.vtt")
    assert parse("Agent: hi", format="text")[0].role == "agent"
    assert set(FORMATS) >= {"webvtt", "aws_transcribe", "aws_call_analytics", "aws_pca", "deepgram", "assemblyai", "whisper", "text"}


def test_recognised_documents_broken_inside_are_refused_not_crashed_on():
    broken = copy.deepcopy(CALL_ANALYTICS)
    broken["Transcript"][0]["BeginOffsetMillis"] = {"not": "a number"}
    assert parse(broken)[0].start is None  # a field it cannot read is left out
    doc = json.loads(read("deepgram-captions/dg_utterances.json"))
    doc["results"]["utterances"] = [{"transcript": ["a", "list"]}, "nonsense", 7, {"transcript": "Hello?", "speaker": 1}]
    assert [(t.speaker, t.text) for t in parse(doc)] == [("Speaker 1", "Hello?")]
    doc = json.loads(read("aws-pca-testfile.json"))
    doc["ConversationAnalytics"]["SpeakerLabels"] = 5
    with pytest.raises(MalformedTranscript, match="Post-Call Analytics"):
        parse(doc)
    with pytest.raises(MalformedTranscript, match="empty"):
        parse("  \n ")


# --- long and hostile transcripts: linear work ----------------------------------------------------


def hour_of(name: str, seconds: float = 3600.0) -> dict:
    """A real Transcribe output (items and speaker segments) repeated back to back, its times
    shifted, until it lasts `seconds`: an hour of talk is about 2.3 MB, as real output is."""
    doc = json.loads(read(name))
    results = doc["results"]
    times = [float(i["start_time"]) for i in results["items"] if "start_time" in i]
    span = max(float(i["end_time"]) for i in results["items"] if "end_time" in i) - min(times) + 0.3

    def shifted(obj, offset: float):
        if isinstance(obj, dict):
            return {k: f"{float(v) + offset:.2f}" if k in ("start_time", "end_time") else shifted(v, offset) for k, v in obj.items()}
        if isinstance(obj, list):
            return [shifted(v, offset) for v in obj]
        return obj

    items, segments, offset = [], [], 0.0
    while offset < seconds:
        items += shifted(results["items"], offset)
        segments += shifted(results["speaker_labels"]["segments"], offset)
        offset += span
    results["items"], results["speaker_labels"]["segments"] = items, segments
    return doc


def test_an_hour_long_amazon_transcribe_call():
    doc = hour_of("aws-transcribe-diarization.json")
    data = json.dumps(doc).encode()
    assert len(data) > 2_000_000  # an hour of Transcribe output is about 2.3 MB
    turns = parse(data)
    assert len(turns) == 2 * (len(doc["results"]["items"]) // 12)  # two turns in each copy of the 12 items
    assert turns[0].text == "I've been on hold for an hour." and turns[-1].text == "Sorry about that."
    assert turns[-1].start > 3500
    assert render(turns).count("\n") == len(turns) - 1


def test_one_speaker_talking_for_an_hour_is_one_turn():
    doc = hour_of("aws-transcribe-diarization.json")
    for item in doc["results"]["items"]:
        item["speaker_label"] = "spk_0"
    [turn] = parse(doc)
    assert turn.text.startswith("I've been on hold for an hour. Sorry about that. I've been")
    assert len(turn.text.split()) == sum(1 for i in doc["results"]["items"] if i["type"] == "pronunciation")


def test_a_speaker_label_shared_by_every_turn_is_cut_before_it_is_read():
    """Contact Lens names each turn's speaker by id; one role of half a megabyte shared by 5,000
    turns was read (cleaned, matched) once per turn."""
    long = "x" * 500_000
    doc = {
        "Participants": [{"ParticipantId": "A", "ParticipantRole": f"Agent {long}"},
                         {"ParticipantId": "C", "ParticipantRole": f"Customer {long}"}],
        "Transcript": [{"ParticipantId": "AC"[n % 2], "Content": "Where is my order?", "BeginOffsetMillis": n * 1000}
                       for n in range(5_000)],
    }
    turns = parse(doc)
    assert [t.role for t in turns[:2]] == ["agent", "customer"] and all(len(t.speaker) == 100 for t in turns)


def test_a_text_transcript_turn_of_two_hundred_thousand_lines():
    text = "Agent: Thank you for calling, how can I help?\nCustomer: my parcel\n" + "has still not arrived\n" * 200_000
    turns = parse(text)
    assert [t.role for t in turns] == ["agent", "customer"]
    assert turns[1].text.startswith("my parcel has still not arrived has") and len(turns[1].text.split()) == 2 + 4 * 200_000


def test_a_webvtt_cue_of_many_lines_and_unclosed_spans():
    cue = "WEBVTT\n\n00:00:01.000 --> 00:00:09.000\n<v Ana Lima>where is it\n" + "still waiting\n" * 100_000 + "\n"
    [turn] = parse(cue)
    assert turn.speaker == "Ana Lima" and turn.text.endswith("still waiting still waiting")
    [turn] = parse("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + "<v a" * 100_000 + "\n")
    assert turn.text.startswith("<v a<v a")


def test_text_that_only_looks_like_subtitles_is_refused_quickly():
    # "1" and a million line breaks: the SRT sniffing pattern backtracked over them quadratically.
    with pytest.raises(UnknownTranscriptFormat):
        parse("1" + "\n" * 1_000_000 + "x")
