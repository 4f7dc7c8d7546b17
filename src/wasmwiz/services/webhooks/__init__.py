"""Webhooks: accounts' endpoints, signed event deliveries on the task queue, and the
checks that keep them off private networks (docs/webhooks.md)."""

from wasmwiz.services.webhooks.events import EventType
from wasmwiz.services.webhooks.sender import WebhookSender
from wasmwiz.services.webhooks.service import (
    CreatedEndpoint,
    DeliveryPage,
    DeliveryView,
    EndpointPage,
    EndpointView,
    WebhookOptions,
    WebhookService,
)
from wasmwiz.services.webhooks.targets import Resolver, TargetPolicy, system_resolver

__all__ = [
    "CreatedEndpoint",
    "DeliveryPage",
    "DeliveryView",
    "EndpointPage",
    "EndpointView",
    "EventType",
    "Resolver",
    "TargetPolicy",
    "WebhookOptions",
    "WebhookSender",
    "WebhookService",
    "system_resolver",
]
