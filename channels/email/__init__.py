"""The email channel: mail in through an SMTP/LMTP receiver (receiver.py) and IMAP mailboxes
(imap.py), both spooling raw mail before acknowledging it; the hub's spool worker then hands each
item to EmailChannel.process(), which parses it (parse.py) and calls the hub's ingest. Replies go
out by SMTP (sender.py).

Mail from the support addresses themselves is flagged by the parser and never answered
automatically, so the hub cannot talk to itself in a loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from channels.base import Delivery, HubLink, PermanentFailure, TemporaryFailure
from channels.email.parse import parse  # noqa: F401 - the channel's pure parser, exported
from channels.email.receiver import SmtpReceiver, SupportAddresses
from hub.contract.errors import ConfigError
from hub.contract.messages import InboundMessage, OutboundMessage
from hub.contract.signing import message_id_key

log = logging.getLogger(__name__)

__all__ = ["EmailChannel", "from_settings", "parse"]


class EmailChannel:
    name = "email"

    def __init__(self, email, *, max_attachment_bytes: int | None = None, log_path=None, data_dir=None):
        """email: hub.config.settings.EmailSettings. log_path: where replies are recorded when no SMTP
        server is configured (receive-only setups still show what agents answered). data_dir:
        where the installation secret lives that our Message-IDs are signed with (hub/contract/signing.py);
        needed to send by SMTP."""
        self.settings = email
        self.own_addresses = tuple(a.strip() for a in email.addresses if a.strip())
        self.addresses = SupportAddresses(self.own_addresses)
        self.max_attachment_bytes = max_attachment_bytes or email.max_message_bytes
        self.hub: HubLink | None = None
        self.receiver: SmtpReceiver | None = None
        self.pollers: list = []
        self.sender = None
        if email.smtp.host:
            from channels.email.sender import SmtpSender

            if data_dir is None:
                # A key nobody else holds would sign ids the hub can never verify: every reply unthreadable.
                raise ConfigError("the email channel needs the data dir that holds the secret its Message-IDs are signed with")
            smtp = email.smtp
            self.sender = SmtpSender(
                host=smtp.host,
                port=smtp.port,
                security=smtp.security,
                username=smtp.username,
                password=smtp.password,
                timeout_seconds=smtp.timeout_seconds,
                from_address=self.own_addresses[0],
                from_name=email.from_name,
                message_id_key=lambda: message_id_key(data_dir),
            )
        else:
            from channels.log import LogChannel

            self.sender = LogChannel("email", path=log_path)

    async def start(self, hub: HubLink) -> None:
        """Start the SMTP/LMTP receiver (when enabled) and one IMAP poller per account."""
        self.hub = hub
        receiver = self.settings.receiver
        if receiver.enabled:
            self.receiver = SmtpReceiver(
                hub,
                self.addresses,
                host=receiver.host,
                port=receiver.port,
                lmtp=receiver.lmtp,
                max_message_bytes=self.settings.max_message_bytes,
            )
            await self.receiver.start()
        if self.settings.imap:
            from channels.email.imap import ImapPoller

            for account in self.settings.imap:
                poller = ImapPoller(account, hub, max_message_bytes=self.settings.max_message_bytes)
                poller.start()
                self.pollers.append(poller)

    async def stop(self) -> None:
        """Stop receiving; what was not acknowledged yet is delivered again after a restart."""
        pollers, self.pollers = self.pollers, []
        await asyncio.gather(*(p.stop() for p in pollers), return_exceptions=True)
        if self.receiver is not None:
            await self.receiver.stop()
            self.receiver = None

    async def send(self, message: OutboundMessage) -> Delivery:
        """Send one reply by SMTP; the Delivery's external_id is our Message-ID, which the
        customer's reply names in In-Reply-To."""
        return await self.sender.send(message)

    async def process(self, payload: dict, raw: bytes | None) -> None:
        """Parse one spooled mail and ingest it. RejectedInput (not an email at all) propagates:
        the spool keeps the mail as rejected with the reason."""
        if raw is None:
            raise PermanentFailure("a spooled email without its raw bytes cannot be read")
        if self.hub is None:
            raise TemporaryFailure("the email channel is not started yet", retry_after=1.0)
        message = await self.hub.run_parser(
            parse, raw, own_addresses=self.own_addresses, max_attachment_bytes=self.max_attachment_bytes,
            trusted_authserv_id=self.settings.trusted_authserv_id,
        )
        await self.hub.ingest(self._with_envelope(message, payload))

    def _with_envelope(self, message: InboundMessage, payload: dict) -> InboundMessage:
        """What the SMTP envelope adds: its recipients can carry the conversation's plus address
        (support+c12@) when the headers do not (Bcc, a forwarding rule)."""
        rcpt_tos = [r for r in payload.get("rcpt_tos") or () if isinstance(r, str)]
        if not rcpt_tos:
            return message
        changes: dict = {}
        if message.thread.conversation_id is None:
            for rcpt in rcpt_tos:
                token = self.addresses.conversation_token(rcpt)
                if token is not None:
                    changes["thread"] = dataclasses.replace(message.thread, conversation_id=token)
                    break
        envelope = {"mail_from": payload.get("mail_from"), "rcpt_tos": rcpt_tos[:20]}
        changes["metadata"] = {**message.metadata, "envelope": envelope}
        return dataclasses.replace(message, **changes)


def from_settings(settings) -> EmailChannel | None:
    """The email channel when settings.email names support addresses and a way to receive or
    send; None otherwise (email replies then go to the log channel)."""
    email = settings.email
    if not email.configured:
        return None
    return EmailChannel(
        email,
        max_attachment_bytes=getattr(settings, "max_attachment_bytes", None),
        log_path=settings.outbound_log,
        data_dir=settings.data_dir,
    )
