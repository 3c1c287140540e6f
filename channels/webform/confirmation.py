"""The confirmation email of a submission: what it says and how it is addressed. The hub queues it
through its outbox (HubLink.send), in the form's conversation."""

from __future__ import annotations

from hub.contract import i18n
from hub.contract.i18n import N_
from hub.contract.i18n import gettext as _
from hub.contract.messages import OutboundMessage

# The [#ref] stays as it is in every language: replies thread back to the conversation by it.
CONFIRMATION_SUBJECT = N_("We have received your message [#%(ref)s]")
# Deliberately none of the visitor's input: anyone can type anyone's address into a public form,
# and a confirmation that echoed the message would let them mail arbitrary text through the hub.
CONFIRMATION_TEXT = N_("""Hello,

Thank you for contacting us. We have received your message and will answer you as soon as we can.

Your reference is #%(ref)s.

To add anything, simply reply to this email: your reply continues the same conversation.
If you did not write to us, you can ignore this email.
""")

# Kept with the stored message, so agents see the hub sent it on its own.
METADATA = {"automatic": "webform_confirmation"}


def confirmation_key(submission_id: str) -> str:
    """One confirmation per submission, however often the page is posted."""
    return f"webform-confirmation:{submission_id}"


def confirmation(conversation_id: int, recipient: str, submission_id: str, *, language: str | None = None) -> OutboundMessage:
    """The confirmation as a message on channel "email", with [#id] in the subject so the
    customer's reply threads back to the conversation; in `language` (the form page's)."""
    with i18n.use(language):
        text = _(CONFIRMATION_TEXT) % {"ref": conversation_id}
        subject = _(CONFIRMATION_SUBJECT) % {"ref": conversation_id}
    return OutboundMessage(
        conversation_id=conversation_id,
        channel="email",
        recipient=recipient,
        text=text,
        subject=subject,
        idempotency_key=confirmation_key(submission_id),
    )
