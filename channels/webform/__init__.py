"""The web form channel: public forms a customer fills in, on the hub or embedded in a company's
own site: form definitions, tokens, validation, upload checks, pages, and the routes that serve
them (channel.py), which the hub mounts through the channel contract like any channel's.

Routes (channel.py):
  GET  /forms/{slug}            the form as a page of its own (works without JavaScript)
  POST /forms/{slug}            a submission (multipart/form-data): confirmation page, or the form
                                again with its errors (422); 403 without a valid token; 429 when a
                                client sends too many
  GET  /forms/{slug}/embed      the same form for an iframe on another site (frame-ancestors *)
  POST /forms/{slug}/embed      a submission from the embedded form
  GET  /forms/{slug}/embed.js   a script that inserts that iframe where it is included
  GET  /forms/_assets/...       the stylesheet and the frame-height script

Embedding on a company's site, either of:
  <script src="https://HUB/forms/contact/embed.js" async></script>
  <iframe src="https://HUB/forms/contact/embed" title="Contact us"
          style="width:100%;height:60rem;border:0"></iframe>
The script form resizes the frame to fit the form; HUB is settings.public_url.

A submission becomes an InboundMessage on channel "webform": a new conversation of the customer
with the email given (or the phone, when no email was given), deduplicated on a submission id
taken from the page's form token, so a refresh or a double click stores one message.
"""

from channels.webform.channel import WebFormChannel, from_settings
from channels.webform.form import Field, Form, FormConfigError, form_from_config, forms_from_config
from channels.webform.openapi import OPENAPI_MODELS, openapi_paths
from channels.webform.validation import CHANNEL, Outcome, UploadedFile, UploadLimits, to_message, validate

__all__ = [
    "CHANNEL",
    "Field",
    "Form",
    "FormConfigError",
    "Outcome",
    "UploadLimits",
    "OPENAPI_MODELS",
    "UploadedFile",
    "WebFormChannel",
    "form_from_config",
    "forms_from_config",
    "from_settings",
    "openapi_paths",
    "to_message",
    "validate",
]
