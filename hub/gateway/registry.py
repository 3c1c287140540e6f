"""Which adapter serves which channel, picked from settings. The hub depends on the protocol in
channels/base.py, never on a concrete adapter: this module is the one place of hub/ that imports
channels (a test holds it to that)."""

from __future__ import annotations

from channels.base import Channel
from hub.contract.errors import HubError


class ChannelNotConfigured(HubError):
    code = "channel_not_configured"


class ChannelRegistry:
    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel, name: str | None = None) -> None:
        self._channels[name or channel.name] = channel

    def get(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise ChannelNotConfigured(
                f"no adapter is configured for channel {name!r}; configured: {', '.join(sorted(self._channels)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._channels)

    def all(self) -> list[Channel]:
        return list(self._channels.values())


# Real adapters, by channel: each module has from_settings(settings) -> Channel | None (None when
# the channel is not configured). Channels without one fall back to the log channel.
ADAPTERS = {
    "email": "channels.email",
    "telegram": "channels.telegram",
    "voice": "channels.voice",
    "webform": "channels.webform",
}


def build_registry(settings) -> ChannelRegistry:
    import importlib
    import importlib.util

    from channels.log import LogChannel

    registry = ChannelRegistry()
    for name, module_name in ADAPTERS.items():
        if importlib.util.find_spec(module_name) is None:
            continue
        channel = importlib.import_module(module_name).from_settings(settings)
        if channel is not None:
            registry.register(channel, name)
    for name in settings.log_channels:
        if name not in registry.names():
            registry.register(LogChannel(name, path=settings.outbound_log), name)
    return registry


def channel_api_parts() -> list:
    """The channel packages that document HTTP routes of their own, for the hub's OpenAPI document:
    each has openapi_paths() and OPENAPI_MODELS (channels/base.py)."""
    import importlib
    import importlib.util

    parts = []
    for module_name in ADAPTERS.values():
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "openapi_paths"):
            parts.append(module)
    return parts
