"""The demo's web chat: a page where a person plays the school's personas, and its JSON API.

The page (``static/``: HTML, one vanilla JS file and a stylesheet, no build step, nothing from
the internet) shows two chats side by side. Everything a person does goes to the local Bot API's
user side (:class:`~bot.localapi.users.FakeUser`): a text or command, a button press, a location,
a photo or a file becomes the update Telegram would deliver, and the real bot answers through the
real Bot API calls. The page long-polls ``GET /api/chat/{id}`` for the chat as it now looks.

API (JSON unless said):

- ``GET /api/demo``: the school, the personas, the invite links, the preset places.
- ``GET /api/chat/{id}?version=V&wait=S``: the chat (messages, reply keyboard, command menu,
  button answers), at once when its version differs from ``V``, else after up to ``S`` seconds.
- ``POST /api/chat/{id}/text`` ``{"text"}``; ``/press`` ``{"message_id", "data"}``;
  ``/location`` ``{"latitude", "longitude"}``; ``/file`` (multipart ``file``: an image is sent
  as a photo, anything else as a document); ``/contact``.
- ``GET /api/file/{file_id}``: a photo's or document's bytes (``?download=1``: as an attachment).
- ``POST /api/remind``: a reminder round now, as ``daka remind`` sends it.

One module a little past 400 lines: the page's JSON API is one small web application, each
route a few lines, and splitting it would only scatter them.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from bot.demo.school import Sample
from bot.localapi import FakeUser, LocalBotAPI, SentMessage
from domain.i18n import LOCALE_OF, _, create_translator

JSON = dict[str, Any]
MAX_UPLOAD = 20 * 1024 * 1024
MAX_WAIT_S = 25.0
STATIC = {
    "index.html": "text/html",
    "chat.js": "text/javascript",
    "chat.css": "text/css",
}

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Remind = Callable[[], Awaitable[str]]


class WebChat:
    """The aiohttp application of the web chat, over a running local Bot API."""

    def __init__(self, server: LocalBotAPI, sample: Sample, remind: Remind) -> None:
        self.server = server
        self.sample = sample
        self.remind = remind
        self.personas = {p.telegram_id: p for p in sample.personas}
        i18n = create_translator()
        with i18n.context(), i18n.use_locale(LOCALE_OF[sample.language]):
            self.labels = page_labels()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD, middlewares=[same_site_only])
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/demo", self.demo)
        app.router.add_get("/api/chat/{user}", self.chat)
        app.router.add_post("/api/chat/{user}/text", self.text)
        app.router.add_post("/api/chat/{user}/press", self.press)
        app.router.add_post("/api/chat/{user}/location", self.location)
        app.router.add_post("/api/chat/{user}/contact", self.contact)
        app.router.add_post("/api/chat/{user}/file", self.upload)
        app.router.add_get("/api/file/{file_id}", self.file)
        app.router.add_post("/api/remind", self.run_remind)
        return app

    # ----------------------------------------------------------------- the page
    async def page(self, request: web.Request) -> web.Response:
        return _static("index.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC or name == "index.html":
            raise web.HTTPNotFound()
        return _static(name)

    async def demo(self, request: web.Request) -> web.Response:
        bot = self.server.bot_username
        invites = [
            {"role": role, "code": code, "link": f"https://t.me/{bot}?start={code}"}
            for role, code in self.sample.invites.items()
        ]
        personas = [
            {
                "id": p.telegram_id,
                "name": p.name,
                "role": p.role,
                "invite": p.invite and self.sample.invites.get(p.invite),
                "suggestions": list(p.suggestions),
            }
            for p in self.sample.personas
        ]
        places = [
            {"name": p.name, "latitude": p.latitude, "longitude": p.longitude}
            for p in self.sample.places
        ]
        return web.json_response(
            {
                "labels": self.labels,
                "school": self.sample.name,
                "language": self.sample.language,
                "bot": bot,
                "personas": personas,
                "invites": invites,
                "places": places,
            },
            dumps=_dumps,
        )

    # ----------------------------------------------------------------- reading a chat
    async def chat(self, request: web.Request) -> web.Response:
        user = self._user(request)
        seen = request.query.get("version", "")
        wait = min(_number(request.query.get("wait", "0"), "wait"), MAX_WAIT_S)
        if seen == self._version(user.id) and wait > 0:
            outputs = len(self.server.outputs(user.id))
            answers = len(self.server.callback_answers_for(user.id))
            await self.server.wait_outputs(user.id, outputs, wait, answers_since=answers)
        return web.json_response(self._state(user.id), dumps=_dumps)

    def _version(self, chat_id: int) -> str:
        server = self.server
        return (
            f"{len(server.outputs(chat_id))}.{len(server.user_messages(chat_id))}."
            f"{len(server.callback_answers_for(chat_id))}.{len(server.messages(chat_id))}"
        )

    def _state(self, chat_id: int) -> JSON:
        server = self.server
        items = [_bot_message(m) for m in server.messages(chat_id)]
        items += [_user_message(m) for m in server.user_messages(chat_id)]
        items.sort(key=lambda m: m["id"])
        keyboard = server.reply_keyboard(chat_id)
        language = self.server.users[chat_id].language_code or ""
        commands = server.commands({"type": "chat", "chat_id": chat_id}, language[:2])
        if not commands:
            commands = server.commands({"type": "chat", "chat_id": chat_id})
        if not commands:
            commands = server.commands({"type": "all_private_chats"}, language[:2])
        if not commands:
            commands = server.commands({"type": "all_private_chats"})
        answers = [
            {"text": a.text, "alert": a.show_alert}
            for a in server.callback_answers_for(chat_id)
            if a.text
        ]
        return {
            "version": self._version(chat_id),
            "messages": items,
            "keyboard": _reply_keyboard(keyboard),
            "commands": commands,
            "answers": answers,
        }

    # ----------------------------------------------------------------- acting as a user
    async def text(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await _body(request)
        text = str(body.get("text", "")).strip()
        if not text:
            raise _bad("text is empty")
        user.send(text[:4096])
        return _done(self._state(user.id))

    async def press(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await _body(request)
        message_id = int(_number(body.get("message_id"), "message_id"))
        data = str(body.get("data", ""))
        try:
            message = self.server.message(user.id, message_id)
        except AssertionError:
            raise _bad("no such message") from None
        if data not in {b.get("callback_data") for row in message.inline_keyboard for b in row}:
            raise _bad("the message has no such button")
        user.press(message, data)
        return _done(self._state(user.id))

    async def location(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await _body(request)
        latitude = _number(body.get("latitude"), "latitude")
        longitude = _number(body.get("longitude"), "longitude")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise _bad("latitude is -90..90 and longitude -180..180")
        user.send_location(latitude, longitude, accuracy=10.0)
        return _done(self._state(user.id))

    async def contact(self, request: web.Request) -> web.Response:
        user = self._user(request)
        user.send_contact(f"+86138{user.id:08d}"[:14])
        return _done(self._state(user.id))

    async def upload(self, request: web.Request) -> web.Response:
        user = self._user(request)
        form = await request.post()
        part = form.get("file")
        if not isinstance(part, web.FileField):
            raise _bad("no file")
        data = part.file.read()
        name = part.filename or "file"
        mime = part.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if mime in ("image/jpeg", "image/png", "image/webp", "image/gif"):
            user.send_photo(content=data)
        else:
            user.send_document(name, data, mime_type=mime)
        return _done(self._state(user.id))

    async def file(self, request: web.Request) -> web.Response:
        stored = self.server.file_info(request.match_info["file_id"])
        if stored is None:
            raise web.HTTPNotFound()
        headers = {}
        if request.query.get("download"):
            name = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
            headers["Content-Disposition"] = f'attachment; filename="{_ascii(name)}"'
        return web.Response(
            body=stored.data,
            content_type=stored.mime_type or "application/octet-stream",
            headers=headers,
        )

    async def run_remind(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "text": await self.remind()}, dumps=_dumps)

    def _user(self, request: web.Request) -> FakeUser:
        try:
            telegram_id = int(request.match_info["user"])
        except ValueError:
            raise web.HTTPNotFound() from None
        persona = self.personas.get(telegram_id)
        if persona is None:
            raise web.HTTPNotFound()
        return self.server.user(telegram_id, persona.name, persona.language_code)


def page_labels() -> dict[str, str]:
    """The page's own words, in the current language (from the catalogs, like the bot's)."""
    return {
        "title": _("Daka demo"),
        "subtitle": _("The real bot, on a local Bot API: nothing leaves this machine. Bot:"),
        "remind": _("⏰ Run a reminder round now"),
        "remind_title": _("Send a reminder round now to everyone who has not checked in"),
        "playing": _("Playing"),
        "invite": _("🔗 Open my invite link"),
        "send_this": _("Send this"),
        "latitude": _("latitude"),
        "longitude": _("longitude"),
        "send_location": _("Send location"),
        "close": _("Close"),
        "commands": _("Commands"),
        "message": _("Message"),
        "share_location": _("Share a location"),
        "attach": _("Send a photo or a file"),
        "send": _("Send"),
        "empty": _("No messages yet. Open the invite link above, or send a command."),
        "edited": _("edited"),
        "pick_place": _("Enter a latitude and a longitude, or pick a place."),
        "failed": _("The demo did not start:"),
    }


@web.middleware
async def same_site_only(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Only this machine's own page may drive the chat: another site open in the same browser
    may not post to it (its Origin differs), nor a name rebound to 127.0.0.1 (its Host)."""
    host = request.host.rsplit(":", 1)[0].strip("[]")
    if host not in LOCAL_HOSTS:
        raise web.HTTPForbidden(text="the demo answers only on this machine's own address")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="the demo's API is for its own page")
    return await handler(request)


def _bot_message(m: SentMessage) -> JSON:
    raw = m.raw
    item: JSON = {
        "id": m.message_id,
        "from": "bot",
        "text": m.text,
        "entities": raw.get("entities") or raw.get("caption_entities") or [],
        "edited": m.edited,
    }
    _media(raw, item)
    rows = []
    for row in m.inline_keyboard:
        buttons = []
        for button in row:
            shown: JSON = {"text": button.get("text", "")}
            for key in ("callback_data", "url"):
                if button.get(key) is not None:
                    shown[key] = button[key]
            buttons.append(shown)
        rows.append(buttons)
    if rows:
        item["inline"] = rows
    return item


def _user_message(raw: JSON) -> JSON:
    item: JSON = {
        "id": int(raw["message_id"]),
        "from": "user",
        "text": str(raw.get("text", raw.get("caption", ""))),
        "entities": [],
    }
    _media(raw, item)
    contact = raw.get("contact")
    if isinstance(contact, dict):
        item["text"] = f"📇 {contact.get('phone_number', '')}"
    return item


def _media(raw: JSON, item: JSON) -> None:
    photo = raw.get("photo")
    if isinstance(photo, list) and photo:
        item["photo"] = f"/api/file/{photo[-1]['file_id']}"
    document = raw.get("document")
    if isinstance(document, dict):
        item["document"] = {
            "name": document.get("file_name") or "file",
            "url": f"/api/file/{document['file_id']}?download=1",
        }
    location = raw.get("location")
    if isinstance(location, dict):
        item["location"] = {"latitude": location["latitude"], "longitude": location["longitude"]}


def _reply_keyboard(markup: JSON | None) -> list[list[JSON]] | None:
    if not markup:
        return None
    rows = []
    for row in markup.get("keyboard") or []:
        buttons = []
        for button in row:
            if not isinstance(button, dict):
                button = {"text": str(button)}
            shown: JSON = {"text": str(button.get("text", ""))}
            if button.get("request_location"):
                shown["location"] = True
            if button.get("request_contact"):
                shown["contact"] = True
            buttons.append(shown)
        rows.append(buttons)
    return rows


def _static(name: str) -> web.Response:
    data = resources.files("bot.demo").joinpath("static", name).read_bytes()
    return web.Response(
        body=data,
        content_type=STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def _body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _bad("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(f"{what} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _bad(f"{what} must be a number")
    return number


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=_dumps({"ok": False, "error": reason}), content_type="application/json"
    )


def _done(state: JSON) -> web.Response:
    return web.json_response({"ok": True, **state}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
