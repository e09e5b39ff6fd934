"""How a Bot API call's parameters arrive, and how an error leaves.

aiogram sends a call as a query string, a form, a multipart upload or JSON, with every value
flattened to a string; Telegram turns them back into JSON values. This module does the same (so
the handlers see ``{"chat_id": 5, "reply_markup": {...}}``), resolves ``attach://`` file parts,
and reads the method call a webhook may put in its answer.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web

from .records import JSON, UploadedFile

log = logging.getLogger("bot.localapi")

# Parameters that are always strings (never JSON-decoded / coerced to numbers).
STRING_KEYS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_query_id",
        "shipping_query_id",
        "pre_checkout_query_id",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "file_id",
        "custom_emoji_id",
        "url",
        "data",
        "parse_mode",
        "caption_parse_mode",
        "action",
        "secret_token",
        "ip_address",
        "language_code",
        "title",
        "description",
        "short_description",
        "name",
        "first_name",
        "last_name",
        "username",
        "emoji",
        "address",
        "foursquare_id",
        "foursquare_type",
        "google_place_id",
        "google_place_type",
        "phone_number",
        "vcard",
        "question",
        "explanation",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "custom_title",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "certificate",
        "game_short_name",
        "next_offset",
        "switch_pm_text",
        "switch_pm_parameter",
        "sticker_set_name",
        "invite_link",
    }
)
_JSONISH = re.compile(r"^(?:[\[{]|-?\d|true$|false$|null$)")


class ApiError(Exception):
    """Raised inside method handlers; becomes ``{"ok": false, ...}`` with that status."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad(description: str) -> ApiError:
    """Telegram's 400 with its ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {description}")


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(status: int, body: JSON) -> web.Response:
    return web.Response(status=status, body=json_bytes(body), content_type="application/json")


def as_int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"invalid integer value {value!r}") from None


def as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad(f"{what} is invalid") from None


def coerce(key: str, value: str) -> Any:
    """Turn a form/query string back into the JSON value aiogram serialised."""
    if key in STRING_KEYS or not value or not _JSONISH.match(value):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> JSON:
    """The call's parameters from its query string and body, whatever the body's encoding."""
    params: JSON = {k: coerce(k, v) for k, v in request.query.items()}
    if not request.can_read_body:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise bad("request body must be a JSON object")
        for key, value in body.items():
            params[key] = coerce(key, value) if isinstance(value, str) else value
        return params
    if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return params
    form = await request.post()
    fields: list[tuple[str, str | UploadedFile]] = []
    for key, value in form.items():
        if isinstance(value, web.FileField):
            upload = UploadedFile(
                filename=value.filename or key,
                content_type=value.content_type or "application/octet-stream",
                data=value.file.read(),
            )
            fields.append((key, upload))
        else:
            fields.append((key, str(value)))
    return form_params(params, fields)


def form_params(params: JSON, fields: list[tuple[str, str | UploadedFile]]) -> JSON:
    """Add form fields to ``params``, resolving ``attach://`` references to file parts."""
    files: dict[str, UploadedFile] = {}
    for key, value in fields:
        if isinstance(value, UploadedFile):
            files[key] = value
        else:
            params[key] = coerce(key, value)
    if files:
        params = {k: _attach(v, files) for k, v in params.items()}
        params.update(files)  # directly-named file parts (and unreferenced ones)
    return params


def _attach(value: Any, files: dict[str, UploadedFile]) -> Any:
    if isinstance(value, str):
        if value.startswith("attach://") and value[9:] in files:
            return files.pop(value[9:])
        return value
    if isinstance(value, list):
        return [_attach(v, files) for v in value]
    if isinstance(value, dict):
        return {k: _attach(v, files) for k, v in value.items()}
    return value


async def read_webhook_reply(resp: aiohttp.ClientResponse) -> JSON | None:
    """The method call in a webhook answer's body, if any (Telegram ignores bad ones)."""
    ctype = resp.content_type
    params: JSON
    try:
        if ctype == "application/json":
            body = await resp.json(content_type=None)
            if not isinstance(body, dict):
                return None
            params = {k: coerce(k, v) if isinstance(v, str) else v for k, v in body.items()}
        elif ctype == "multipart/form-data":
            fields: list[tuple[str, str | UploadedFile]] = []
            async for part in aiohttp.MultipartReader(resp.headers, resp.content):
                if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                    continue
                if part.filename is None:
                    fields.append((part.name, await part.text()))
                else:
                    data = await part.read(decode=True)
                    mime = part.headers.get("Content-Type", "application/octet-stream")
                    fields.append((part.name, UploadedFile(part.filename, mime, data)))
            params = form_params({}, fields)
        elif ctype == "application/x-www-form-urlencoded":
            pairs = urllib.parse.parse_qsl(await resp.text(), keep_blank_values=True)
            params = {k: coerce(k, v) for k, v in pairs}
        else:
            return None
    except (ValueError, aiohttp.ClientPayloadError) as err:
        log.warning("localapi: unreadable webhook answer (%s) ignored: %s", ctype, err)
        return None
    method = params.get("method")
    return params if isinstance(method, str) and method else None
