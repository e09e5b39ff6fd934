"""Files in replies: how a file a handler sends goes into a reply's record and back, and how an
`Upload` is made and sent after the commit (`handlers.telegram.replies` records and sends the
replies).

A file the handler made (a chart, a member's data) is kept in its record, base64, until sent; a
file that takes seconds to make (an export) is an `Upload`: its record says how to make it, and
the sender makes it after the commit, one at a time, in a child process with its own database
connection (`storage.makers`), then uploads it from a temporary file. So a batch that is rolled
back and handled again sends its files once, and no file is made while the update's transaction
is open or on the event loop."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Final

from aiogram import Bot
from aiogram.methods import SendDocument, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import BufferedInputFile, FSInputFile, InputFile

from storage.makers import make_file

log = logging.getLogger(__name__)

Spec = dict[str, Any]  # a file as its record keeps it, under `UPLOAD`

UPLOAD: Final = "daka_upload"  # the key of an upload in a record's field


class Upload(InputFile):
    """A file made after the commit, in a process of its own, by the maker named `maker` in
    `storage.makers.MAKERS`, from JSON `args`; `{rows}` in the call's caption becomes the
    number of rows it holds, and `failed` is sent instead when it cannot be made (too many
    rows for a workbook, say)."""

    def __init__(self, maker: str, args: Mapping[str, Any], filename: str, failed: str) -> None:
        super().__init__(filename=filename)
        self.maker, self.args, self.failed = maker, dict(args), failed

    async def read(self, bot: Bot) -> AsyncGenerator[bytes, None]:
        raise RuntimeError("an Upload is made by ReplySender, then sent as a file")
        yield b""  # pragma: no cover (makes this an async generator, as InputFile.read is)

    def spec(self) -> Spec:
        return {
            "make": self.maker,
            "args": self.args,
            "filename": self.filename,
            "failed": self.failed,
        }


def has_upload(method: TelegramMethod[Any]) -> bool:
    """A file to upload (only a photo or a document among the deferred calls can carry one)."""
    return isinstance(method, SendPhoto | SendDocument) and any(
        isinstance(value, InputFile) for value in method.__dict__.values()
    )


async def buffered(method: TelegramMethod[Any], bot: Bot) -> TelegramMethod[Any]:
    """The call with each file that is neither bytes nor an `Upload` read into bytes (a file
    on disk may be gone by the time the reply is sent; bytes go into the journal)."""
    changes: dict[str, Any] = {}
    for name, value in method.__dict__.items():
        if isinstance(value, InputFile) and not isinstance(value, BufferedInputFile | Upload):
            data = b"".join([chunk async for chunk in value.read(bot)])
            changes[name] = BufferedInputFile(data, filename=value.filename or name)
    return method.model_copy(update=changes) if changes else method


def file_field(value: Any) -> dict[str, Spec] | None:
    """A file as a record's field (`{UPLOAD: spec}`), or None when `value` is not one."""
    if isinstance(value, Upload):
        return {UPLOAD: value.spec()}
    if isinstance(value, BufferedInputFile):
        data = base64.b64encode(value.data).decode("ascii")
        return {UPLOAD: {"data": data, "filename": value.filename}}
    return None


def upload_fields(record: Mapping[str, Any]) -> list[tuple[str, Spec]]:
    """The fields of a record that hold an upload, with its spec."""
    return [
        (name, value[UPLOAD])
        for name, value in record.items()
        if isinstance(value, dict) and isinstance(value.get(UPLOAD), dict)
    ]


def input_file(spec: Spec) -> InputFile:
    """A file back from its spec: an `Upload`, or the bytes kept in the record."""
    filename = str(spec.get("filename") or "file")
    if "make" in spec:
        return Upload(str(spec["make"]), spec.get("args") or {}, filename, str(spec["failed"]))
    return BufferedInputFile(base64.b64decode(str(spec.get("data", ""))), filename=filename)


async def send_made(
    method: TelegramMethod[Any],
    chat_id: int,
    call: Callable[[TelegramMethod[Any]], Awaitable[bool]],
    database_url: str | None,
) -> None:
    """Send a call with files: each `Upload` made first (on `database_url`) and removed once
    sent; `call` sends through aiogram and says whether Telegram took it. An upload that
    cannot be made, or that Telegram refuses, is followed by its `failed` text instead; a
    photo Telegram refuses goes again as a document."""
    changes: dict[str, Any] = {}
    made: list[str] = []
    failed = ""
    try:
        for name, value in method.__dict__.items():
            if not isinstance(value, Upload):
                continue
            failed = value.failed
            outcome = await make_file(value.maker, value.args, value.filename or "", database_url)
            if outcome is None:
                await call(SendMessage(chat_id=chat_id, text=failed))
                return
            path, rows = outcome
            made.append(path)
            changes[name] = FSInputFile(path, filename=value.filename)
            caption = method.__dict__.get("caption")
            if isinstance(caption, str):
                changes["caption"] = caption.replace("{rows}", f"{rows:,}")
        sent = await call(method.model_copy(update=changes) if changes else method)
        if not sent and isinstance(method, SendPhoto):
            # A picture Telegram will not take as a photo (PHOTO_INVALID_DIMENSIONS: its sides
            # add up past 10000, or one is 20 times the other): the same bytes as a document.
            sent = await call(as_document(method))
        if not sent and failed:
            # Made, but refused (too large for Telegram, say).
            await call(SendMessage(chat_id=chat_id, text=failed))
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                os.unlink(path)


def as_document(photo: SendPhoto) -> SendDocument:
    """A photo's call as a document's: the same file, caption and buttons."""
    return SendDocument(
        chat_id=photo.chat_id,
        document=photo.photo,
        caption=photo.caption,
        parse_mode=photo.parse_mode,
        caption_entities=photo.caption_entities,
        reply_markup=photo.reply_markup,
    )
