"""Files: what the bot uploads and what users send, kept by ``file_id`` and served back.

The bot's uploads (multipart parts or ``attach://``), a ``file_id`` it re-sends and an http URL
all become a stored file; ``getFile`` names its path and ``/file/bot<token>/<path>`` serves its
bytes, as on Telegram, so the bot's own downloads of users' photos and documents work.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .params import bad, json_response
from .records import JSON, UploadedFile
from .state import ServerState

MEDIA_DEFAULT_NAMES = {
    "photo": ("photo.jpg", "image/jpeg"),
    "document": ("document", "application/octet-stream"),
    "video": ("video.mp4", "video/mp4"),
    "audio": ("audio.mp3", "audio/mpeg"),
    "voice": ("voice.ogg", "audio/ogg"),
    "animation": ("animation.mp4", "video/mp4"),
    "sticker": ("sticker.webp", "image/webp"),
    "video_note": ("video_note.mp4", "video/mp4"),
}
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


PHOTO_SIDES_MAX = 10000  # sendPhoto: width and height must not exceed 10000 in total
PHOTO_RATIO_MAX = 20  # and their ratio must be at most 20


def image_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's or a JPEG's width and height from its header; None when they cannot be read."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            return int.from_bytes(data[at + 7 : at + 9], "big"), height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def photo_dimensions_valid(data: bytes) -> bool:
    """What Telegram checks of a photo sent with sendPhoto (PHOTO_INVALID_DIMENSIONS)."""
    size = image_size(data)
    if size is None:
        return True
    width, height = size
    if width <= 0 or height <= 0:
        return False
    return width + height <= PHOTO_SIDES_MAX and max(width, height) <= PHOTO_RATIO_MAX * min(
        width, height
    )


@dataclass(slots=True)
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None
    mime_type: str | None

    def as_file(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


class FileStore(ServerState):
    """register_file, file_bytes, getFile and the download route."""

    def file_bytes(self, file_id: str) -> bytes:
        """Content of a file known to the server (uploaded by the bot or sent by a user)."""
        stored = self._files.get(file_id)
        if stored is None:
            raise AssertionError(f"unknown file_id {file_id!r}")
        return stored.data

    def file_info(self, file_id: str) -> StoredFile | None:
        """The stored file (name, type, bytes) behind ``file_id``, if the server has it."""
        return self._files.get(file_id)

    def register_file(
        self,
        data: bytes,
        *,
        kind: str = "document",
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> JSON:
        """Store ``data`` as a Telegram file; returns {file_id, file_unique_id, ...}."""
        seq = next(self._file_seq)
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            ext = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"{kind[:3].upper()}ACAgIAAxkBAAI{seq:06d}",
            file_unique_id=f"AgAD{seq:06d}",
            file_path=f"{kind}s/file_{seq}{ext}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(data),
        }

    def _input_file(self, value: Any, kind: str) -> JSON:
        """The file a send method names: an upload, a known file_id, or an http URL."""
        if isinstance(value, UploadedFile):
            if kind == "photo" and not photo_dimensions_valid(value.data):
                raise bad("PHOTO_INVALID_DIMENSIONS")
            default_name, default_type = MEDIA_DEFAULT_NAMES[kind]
            name = value.filename or default_name
            mime = value.content_type
            if mime in ("", "application/octet-stream"):
                mime = mimetypes.guess_type(name)[0] or default_type
            info = self.register_file(value.data, kind=kind, file_name=name, mime_type=mime)
            return {**info, "file_name": name, "mime_type": mime}
        if isinstance(value, str):
            stored = self._files.get(value)
            if stored is not None:
                return {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": len(stored.data),
                    "file_name": stored.file_name,
                    "mime_type": stored.mime_type,
                }
            if value.startswith(("http://", "https://")):
                name = value.rsplit("/", 1)[-1] or MEDIA_DEFAULT_NAMES[kind][0]
                mime = mimetypes.guess_type(name)[0] or MEDIA_DEFAULT_NAMES[kind][1]
                info = self.register_file(FAKE_JPEG, kind=kind, file_name=name, mime_type=mime)
                return {**info, "file_name": name, "mime_type": mime}
            raise bad("wrong file identifier/HTTP URL specified")
        raise bad(f"there is no {kind} in the request")

    async def _m_get_file(self, params: JSON) -> JSON:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad("invalid file_id")
        return stored.as_file()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """GET /file/bot<token>/<file_path>: the bytes, as Telegram's file server sends them."""
        stored = self._files_by_path.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )
