"""Request and response shapes of the knowledge-base routes (hub/kb/routes.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate (valid in JSON) cannot be encoded.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Title = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_storable), AfterValidator(_not_blank)]
Body = Annotated[str, Field(min_length=1, max_length=200_000, description="Markdown (headings cut it into passages) or plain text"),
                 AfterValidator(_storable), AfterValidator(_not_blank)]
Tag = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_storable), AfterValidator(_not_blank)]
Language = Annotated[str, Field(pattern=LANGUAGE_PATTERN, max_length=16, description="a language tag: en, zh, pt-BR")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleIn(Strict):
    title: Title
    body: Body
    format: Literal["markdown", "text"] = "markdown"
    language: Language = "en"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    published: bool | None = Field(
        default=None, description="default: true when an admin writes, false (a draft) when an agent does; agents write drafts only"
    )


class ArticlePatch(Strict):
    title: Title | None = None
    body: Body | None = None
    format: Literal["markdown", "text"] | None = None
    language: Language | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    published: bool | None = Field(default=None, description="publishing (or unpublishing) needs an admin")

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("give at least one of title, body, format, language, tags, published")
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self


class PassageOut(BaseModel):
    id: str = Field(description="the article id and a hash of the passage's content")
    position: int
    heading: str = Field(description="the headings the passage sits under, 'Returns > Damaged items'")
    text: str


class ArticleOut(BaseModel):
    id: int
    title: str
    body: str
    format: Literal["markdown", "text"]
    language: str
    tags: list[str]
    published: bool
    source_key: str | None = Field(description="where an imported or captured article came from")
    captured_from_message_id: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    passages: list[PassageOut]


class ArticleSummary(BaseModel):
    id: int
    title: str
    body: str = Field(description="the first 300 characters")
    format: Literal["markdown", "text"]
    language: str
    tags: list[str]
    published: bool
    source_key: str | None
    captured_from_message_id: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    passage_count: int


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None


class KbHit(BaseModel):
    article_id: int
    passage_id: str
    title: str
    heading: str
    snippet: str
    score: float = Field(description="the ranking score (comparable within one answer only)")
    confidence: float = Field(description="calibrated: the estimated probability that this passage answers the question")


class KbSearchOut(BaseModel):
    query: str
    answerable: bool = Field(description="whether the best passage clears the confidence threshold")
    confidence: float
    hits: list[KbHit]


class SuggestionsOut(BaseModel):
    conversation_id: int
    question: str = Field(description="what was searched: the subject and the customer's latest messages")
    message_ids: list[int] = Field(description="the customer's messages the question came from")
    status: Literal["suggested", "no_good_answer", "no_question"] = Field(
        description="suggested; no_good_answer: nothing in the knowledge base is confident enough (no suggestions); "
        "no_question: the customer has not written anything to answer"
    )
    answerable: bool
    confidence: float = Field(description="confidence of the best passage")
    suggestions: list[KbHit] = Field(description="best first, one per article; empty unless status is suggested")


class FeedbackIn(Strict):
    article_id: int = Field(ge=1, le=2_147_483_647)
    passage_id: str | None = Field(default=None, min_length=1, max_length=64)
    verdict: Literal["used", "not_helpful"]


class FeedbackOut(BaseModel):
    conversation_id: int
    article_id: int
    passage_id: str | None
    verdict: Literal["used", "not_helpful"]
    created: bool = Field(description="false: this verdict was recorded before")


class FeedbackItem(BaseModel):
    article_id: int
    title: str
    published: bool
    shown: int = Field(description="conversations it was suggested on")
    used: int = Field(description="conversations whose agent used it")
    not_helpful: int = Field(description="conversations whose agent found it not helpful")
    used_rate: float | None = Field(description="used / shown")


class FeedbackReport(BaseModel):
    items: list[FeedbackItem]


class CaptureIn(Strict):
    title: Title | None = Field(default=None, description="default: the conversation's subject")
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    published: bool = Field(default=False, description="publish at once, searchable right away (admins only; agents write drafts)")


MODELS = [
    ArticleIn, ArticlePatch, PassageOut, ArticleOut, ArticleSummary, ArticlePage, KbHit, KbSearchOut, SuggestionsOut,
    FeedbackIn, FeedbackOut, FeedbackItem, FeedbackReport, CaptureIn,
]
