"""What the hub writes to a customer from the back end's facts: automatic answers and drafts for
the agent, in English and Chinese.

Plain functions over the adapters' shapes (OrderStatus, StockLevel), no I/O: the routing worker
decides whether a text goes out automatically or waits as a draft; this module only words it.
Dates read the way people write them ("3 May", "5月3日"), with the year only when it is not this
year's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any

from adapters.base import OrderStatus, StockLevel
from hub.contract import clock
from hub.contract.timefmt import iso

LANGUAGES = ("en", "zh")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")

STATE_EN = {
    "pending": "received and waiting to be confirmed",
    "confirmed": "confirmed",
    "processing": "being prepared in our warehouse",
    "on_hold": "on hold",
}
STATE_ZH = {
    "pending": "已收到，等待确认",
    "confirmed": "已确认",
    "processing": "正在仓库备货",
    "on_hold": "暂缓处理",
}

# States whose facts answer the question by themselves. "on_hold" needs a person to say why.
ANSWERABLE_STATES = frozenset({"pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "returned"})


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else "en"


def as_date(when: date | datetime | None) -> date | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
        return when.date()
    return when


def format_day(when: date | datetime, language: str = "en", *, today: date | None = None) -> str:
    """'3 May' / '5月3日'; the year is added when it is not the current one."""
    day = as_date(when)
    this_year = (today or clock.today()).year
    if language_of(language) == "zh":
        text = f"{day.month}月{day.day}日"
        return text if day.year == this_year else f"{day.year}年{text}"
    text = f"{day.day} {MONTHS[day.month - 1]}"
    return text if day.year == this_year else f"{text} {day.year}"


def _quantity(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- orders -----------------------------------------------------------------------------------


def order_sentence(order: OrderStatus, language: str = "en", *, today: date | None = None) -> str:
    """One or two sentences on where the order stands, e.g. 'Order SO-4711 shipped on 3 May with
    DHL, tracking 00340434 (https://...); expected 6 May.'"""
    if language_of(language) == "zh":
        return _order_zh(order, today)
    return _order_en(order, today)


def _order_en(o: OrderStatus, today: date | None) -> str:
    day = lambda d: format_day(d, "en", today=today)  # noqa: E731
    if o.state == "shipped":
        text = f"Order {o.ref} shipped"
        if o.shipped_at:
            text += f" on {day(o.shipped_at)}"
        if o.carrier:
            text += f" with {o.carrier}"
        if o.tracking_number:
            text += f", tracking {o.tracking_number}"
            if o.tracking_url:
                text += f" ({o.tracking_url})"
        if o.expected_date:
            text += f"; expected {day(o.expected_date)}"
        text += "."
    elif o.state == "delivered":
        text = f"Order {o.ref} has been delivered."
    elif o.state == "cancelled":
        text = f"Order {o.ref} was cancelled."
    elif o.state == "returned":
        text = f"Order {o.ref} was returned to us."
    else:
        text = f"Order {o.ref} is {STATE_EN.get(o.state, o.state)}"
        text += f"; expected {day(o.expected_date)}." if o.expected_date else "."
    if o.late and o.promised_date:
        if o.expected_date and o.expected_date > o.promised_date:
            text += f" We are sorry it is late: we promised {day(o.promised_date)}."
        else:
            text += f" We are sorry it is late: we promised {day(o.promised_date)} and are checking it now."
    return text


def _order_zh(o: OrderStatus, today: date | None) -> str:
    day = lambda d: format_day(d, "zh", today=today)  # noqa: E731
    if o.state == "shipped":
        text = f"订单 {o.ref} "
        if o.shipped_at:
            text += f"已于{day(o.shipped_at)}"
        else:
            text += "已"
        text += f"由{o.carrier}发货" if o.carrier else "发货"
        if o.tracking_number:
            text += f"，运单号 {o.tracking_number}"
            if o.tracking_url:
                text += f"（{o.tracking_url}）"
        if o.expected_date:
            text += f"；预计{day(o.expected_date)}送达"
        text += "。"
    elif o.state == "delivered":
        text = f"订单 {o.ref} 已送达。"
    elif o.state == "cancelled":
        text = f"订单 {o.ref} 已取消。"
    elif o.state == "returned":
        text = f"订单 {o.ref} 已退回。"
    else:
        text = f"订单 {o.ref} {STATE_ZH.get(o.state, o.state)}"
        text += f"，预计{day(o.expected_date)}送达。" if o.expected_date else "。"
    if o.late and o.promised_date:
        text += f"很抱歉，订单延误了：我们原定{day(o.promised_date)}送达。"
    return text


# --- stock ------------------------------------------------------------------------------------


def _by_sku(levels: Iterable[StockLevel]) -> dict[str, list[StockLevel]]:
    out: dict[str, list[StockLevel]] = {}
    for level in levels:
        out.setdefault(level.sku, []).append(level)
    return out


def available(levels: Sequence[StockLevel]) -> float:
    return sum(max(0.0, level.available) for level in levels)


def next_receipt(levels: Sequence[StockLevel], *, today: date | None = None) -> date | None:
    today = today or clock.today()
    dates = [d for level in levels for d, qty in level.incoming if qty > 0 and d >= today]
    return min(dates) if dates else None


def stock_sentence(levels: Sequence[StockLevel], language: str = "en", *, quantity: int | None = None,
                   today: date | None = None) -> str:
    """One sentence per SKU: in stock (enough for the quantity asked), or out of stock and when
    more is expected. Exact quantities stay in the facts for the agent."""
    zh = language_of(language) == "zh"
    sentences = []
    for sku, rows in _by_sku(levels).items():
        name = rows[0].product_name or sku
        label = (f"{name}（{sku}）" if zh else f"{name} ({sku})") if name != sku else sku
        have = available(rows)
        wanted = quantity or 1
        receipt = next_receipt(rows, today=today)
        if have >= wanted:
            if zh:
                sentences.append(f"{label}有现货" + (f"，足够{wanted}件。" if quantity else "。"))
            else:
                sentences.append(f"{label} is in stock" + (f", enough for the {wanted} you asked for." if quantity else "."))
        elif have > 0:
            if zh:
                text = f"{label}目前只有{_quantity(have)}件现货（您需要{wanted}件）"
                text += f"，预计{format_day(receipt, 'zh', today=today)}补货。" if receipt else "。"
            else:
                text = f"We have {_quantity(have)} of {label} in stock, fewer than the {wanted} you asked for"
                text += f"; more is expected on {format_day(receipt, 'en', today=today)}." if receipt else "."
            sentences.append(text)
        elif zh:
            sentences.append(f"{label}暂时缺货" + (f"，预计{format_day(receipt, 'zh', today=today)}到货。" if receipt else "，到货日期暂未确定。"))
        else:
            sentences.append(f"{label} is out of stock at the moment"
                             + (f"; we expect more on {format_day(receipt, 'en', today=today)}." if receipt
                                else "; we do not have a date for new stock yet."))
    return " ".join(sentences)


# --- what is not answered from facts ------------------------------------------------------------


def ask_for_order_number(language: str = "en") -> str:
    if language_of(language) == "zh":
        return "请告诉我们您的订单号（例如 SO-4711），我们会立即为您查询。"
    return "Could you tell us your order number (for example SO-4711)? We will check it right away."


def privacy_notice(ref: str, language: str = "en") -> str:
    """Order details go only to the addresses the order was placed with."""
    if language_of(language) == "zh":
        return (f"为保护您的隐私，我们只能将订单 {ref} 的详情发送到下单时使用的邮箱或电话。"
                "请从该邮箱或电话联系我们，我们会立即为您查询。")
    return (f"To protect your privacy we can only share the details of order {ref} with the email address "
            "or phone number it was placed with. Could you write to us from that address? We will check it right away.")


def sent_to_order_address(ref: str, language: str = "en") -> str:
    """The asker's side of a status sent to the order's own address: where it went, not which address."""
    if language_of(language) == "zh":
        return f"我们已将订单 {ref} 的最新状态发送到下单时使用的邮箱。"
    return f"We have sent the status of order {ref} to the email address the order was placed with."


def rest_for_a_colleague(language: str = "en") -> str:
    if language_of(language) == "zh":
        return "您的其他问题将由我们的同事尽快答复。"
    return "A colleague will answer your other question shortly."


def left_open_note(questions: Sequence[str]) -> str:
    """For the agent (not sent): what the automatic answer did not cover."""
    return "The automatic answer covered part of the message. Still to answer:\n" + "\n".join(f"- {q}" for q in questions)


def unknown_order(ref: str, language: str = "en") -> str:
    if language_of(language) == "zh":
        return f"我们没有找到订单号为 {ref} 的订单，请核对订单号后再告诉我们。"
    return f"We could not find an order with the reference {ref}. Could you check the number and send it again?"


def unknown_product(text: str, language: str = "en") -> str:
    if language_of(language) == "zh":
        return f"我们没有找到“{text}”这件商品，请告诉我们商品名称或货号。"
    return f"We could not find the product \"{text}\". Could you send us its name or article number?"


def ask_which_product(language: str = "en") -> str:
    if language_of(language) == "zh":
        return "请告诉我们您想了解哪件商品（名称或货号），我们会为您查询库存。"
    return "Which product would you like us to check? Its name or article number is enough."


def compose(sentences: Sequence[str], *, name: str | None = None, language: str = "en", automatic: bool = False) -> str:
    """Greeting, the sentences, and a closing that says when the answer was automatic."""
    zh = language_of(language) == "zh"
    first = (name or "").split()[0] if name and name.split() else ""
    if zh:
        greeting = f"{name}，您好：" if name else "您好："
        closing = "如需其他帮助，请直接回复此消息。" + ("（此为自动回复）" if automatic else "")
    else:
        greeting = f"Hello {first}," if first else "Hello,"
        closing = ("This answer was sent automatically from our order system; reply to this message if you need anything else."
                   if automatic else "Reply to this message if you need anything else.")
    return "\n\n".join([greeting, " ".join(s for s in sentences if s), closing])


# --- facts as JSON ------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """A back end's answer (dataclasses, dates, tuples) as JSON-safe data for the facts table."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, OrderStatus):
            out["late"] = value.late
        return out
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value
