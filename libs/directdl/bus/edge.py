"""Validation at the edge: a delivery's properties and body checked before any handler."""

from __future__ import annotations

from pydantic import ValidationError

from directdl.bus.delivery import Delivery
from directdl.bus.refusals import describe, field_errors
from directdl.contracts.base import CONTENT_TYPE, Message
from directdl.contracts.errors import ErrorCode, MessageError
from directdl.settings_catalog import MAX_MESSAGE_BYTES


def validate(delivery: Delivery, model: type[Message] | None, max_body_bytes: int) -> Message:
    """The model `delivery` carries, or a MessageError that says what is wrong with it;
    `model` is None when nothing here handles its routing key."""
    if model is None:
        raise MessageError(
            f"no handler for routing key {delivery.routing_key!r} here",
            code=ErrorCode.UNSUPPORTED,
            details={"routing_key": delivery.routing_key},
        )
    if not delivery.message_id:
        raise MessageError(
            "the message_id property is required: it is the idempotency key",
            code=ErrorCode.INVALID_MESSAGE,
            details={"property": "message_id"},
        )
    if delivery.content_type not in (None, "", CONTENT_TYPE):
        raise MessageError(
            f"content_type {delivery.content_type!r} is not {CONTENT_TYPE}",
            code=ErrorCode.INVALID_MESSAGE,
            details={"property": "content_type", "value": delivery.content_type},
        )
    for name in ("message_id", "correlation_id", "reply_to"):
        if "\x00" in (getattr(delivery, name) or ""):
            raise MessageError(
                f"the {name} property contains a NUL character",
                code=ErrorCode.INVALID_MESSAGE,
                details={"property": name},
            )
    size = len(delivery.body or b"")
    if size > max_body_bytes:
        # Refused unread: parsing it is the cost, and quoting any of it would echo it.
        raise MessageError(
            f"the {delivery.routing_key} body is {size} bytes; at most {max_body_bytes} are "
            f"accepted ({MAX_MESSAGE_BYTES})",
            code=ErrorCode.INVALID_MESSAGE,
            details={"size": size, "limit": max_body_bytes},
        )
    try:
        return model.model_validate_json(delivery.body or b"null")
    except ValidationError as err:
        raise MessageError(
            describe(delivery.routing_key, err),
            code=ErrorCode.INVALID_MESSAGE,
            details={"errors": field_errors(err)},
        ) from err
