"""A small, strict-enough parser for Telegram's HTML parse mode.

Turns ``<b>bold</b> &amp; text`` into plain text + MessageEntity dicts (UTF-16 offsets)
and raises :class:`EntityParseError` where Telegram answers
``400 Bad Request: can't parse entities: ...`` (unknown tags, unclosed / mismatched tags,
a bare ``<``).
"""

from __future__ import annotations

import re
from typing import Any

_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPECIAL = re.compile(r"[<&]")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>")
_ATTR = re.compile(r"""([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _attrs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        value = next((g for g in m.groups()[1:] if g is not None), "")
        out[m.group(1).lower()] = _unescape(value)
    return out


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    return _ENTITY.sub(lambda m: _entity(m) or m.group(0), text)


def _entity(m: re.Match[str]) -> str | None:
    body = m.group(1)
    if body.startswith(("#x", "#X")):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        return _NAMED.get(body)
    if 0 < code <= 0x10FFFF:
        return chr(code)
    return None


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(plain_text, entities)`` or raise :class:`EntityParseError`."""
    if "<" not in text and "&" not in text:
        return text, []
    out: list[str] = []
    pos = 0  # UTF-16 offset in the output
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        m = _SPECIAL.search(text, i)
        j = n if m is None else m.start()
        if j > i:
            chunk = text[i:j]
            out.append(chunk)
            pos += utf16_len(chunk)
        if m is None:
            break
        if text[j] == "&":
            em = _ENTITY.match(text, j)
            decoded = _entity(em) if em is not None else None
            if em is not None and decoded is not None:
                out.append(decoded)
                pos += utf16_len(decoded)
                i = em.end()
            else:  # Telegram tolerates a bare "&"
                out.append("&")
                pos += 1
                i = j + 1
            continue
        tm = _TAG.match(text, j)
        if tm is None:
            raise EntityParseError(
                f"Unexpected end of name token at byte offset {_byte_offset(text, j)}"
            )
        closing, name, raw_attrs = tm.group(1) == "/", tm.group(2).lower(), tm.group(3)
        if closing:
            if not stack:
                raise EntityParseError(
                    f'Unexpected end tag "{name}" at byte offset {_byte_offset(text, j)}'
                )
            open_name, attrs, start = stack.pop()
            if open_name != name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, j)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            if pos > start:
                entity = _make_entity(open_name, attrs, start, pos - start)
                if entity is not None:
                    entities.append(entity)
        else:
            attrs = _attrs(raw_attrs)
            if name not in _TAG_TYPES or (name == "span" and attrs.get("class") != "tg-spoiler"):
                raise EntityParseError(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, j)}'
                )
            stack.append((name, attrs, pos))
        i = tm.end()
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _make_entity(
    name: str, attrs: dict[str, str], offset: int, length: int
) -> dict[str, Any] | None:
    kind = _TAG_TYPES[name]
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if name == "a":
        href = attrs.get("href")
        if not href:
            return None
        entity["url"] = href
    elif name == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    elif name == "pre":
        language = attrs.get("language")
        if language:
            entity["language"] = language
    return entity
