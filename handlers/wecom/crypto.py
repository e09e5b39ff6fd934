"""WeCom's callback crypto, exactly as its 加解密方案说明 (Doc 91144) specifies, so that only
WeCom, holding the app's Token and EncodingAESKey, can make a callback this server accepts.

- msg_signature = SHA-1 of the sorted, concatenated token, timestamp, nonce and ciphertext;
- AESKey = base64-decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = AESKey[:16];
- plaintext = 16 random bytes + 4-byte big-endian length + message + receive id (the CorpID
  for a self-built app), PKCS#7-padded to a multiple of 32 bytes; the ciphertext is base64.

Every failure is one of three exceptions (`BadSignature`, `BadCorpId`, `BadPayload`), never
anything the parser or the cipher raised: the callback answers 4xx and handles nothing. The
signature is compared in constant time; XML with a DTD is refused (so no entities either), and
anything that could hide one from that test is read with defusedxml, which refuses it too."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import fromstring

BLOCK: Final = 32  # WeCom pads to 32 bytes (not AES's 16)
AES_KEY_SHAPE: Final = re.compile(r"[A-Za-z0-9+/]{43}")
MAX_XML: Final = 256 * 1024  # a callback is a few hundred bytes; refuse to parse megabytes


class CallbackError(Exception):
    """A callback that is not WeCom's for this app, or not readable: refuse it (4xx)."""


class BadSignature(CallbackError):
    """msg_signature does not match: not signed with this app's Token."""


class BadCorpId(CallbackError):
    """Decrypted, but for another receiver (corp) than this app's."""


class BadPayload(CallbackError):
    """Not well-formed: XML, base64, cipher block size, padding or inner length."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A message encrypted and signed for WeCom (a passive reply, or the fake's callback)."""

    encrypt: str
    signature: str
    timestamp: str
    nonce: str

    def xml(self) -> str:
        """The envelope WeCom expects as a passive reply body."""
        return (
            f"<xml><Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{self.nonce}]]></Nonce></xml>"
        )


def aes_key_of(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ValueError if it is not one."""
    if not AES_KEY_SHAPE.fullmatch(encoding_aes_key):
        raise ValueError("EncodingAESKey must be 43 base64 characters (A-Z, a-z, 0-9)")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always give 32 bytes
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: SHA-1 hex of the four strings sorted and joined."""
    joined = "".join(sorted((token, timestamp, nonce, encrypt)))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


class _NoDTD(TreeBuilder):
    """The element tree builder, refusing a document type declaration (a second guard:
    `parse_xml` sends every document that might have one to defusedxml)."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise DTDForbidden(name, system, pubid)


def parse_xml(data: bytes | str) -> Element:
    """Untrusted XML as an element tree: no DTD, no entities, bounded size; else BadPayload.

    A DTD (the only place entities are declared) begins with the bytes `<!DOCTYPE` in every
    encoding expat reads but UTF-16, whose text has NUL bytes: a document with neither is read
    by ElementTree's C parser, three times faster than defusedxml's pure-Python one (a
    callback is parsed twice: the envelope, then the message); any other by defusedxml."""
    if len(data) > MAX_XML:
        raise BadPayload(f"XML of {len(data)} bytes is larger than {MAX_XML}")
    try:
        if isinstance(data, str):
            suspect = "<!DOCTYPE" in data or "\0" in data
        else:
            suspect = b"<!DOCTYPE" in data or b"\0" in data
        if suspect:
            return fromstring(data, forbid_dtd=True)
        parser = XMLParser(target=_NoDTD())
        parser.feed(data)
        root: Element = parser.close()
        return root
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise BadPayload(f"not well-formed XML: {type(exc).__name__}") from None


class WeComCrypto:
    """One app's callback crypto: Token, EncodingAESKey and receive id (the CorpID)."""

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._token = token
        self._key = aes_key_of(encoding_aes_key)
        self._receive_id = receive_id.encode("utf-8")
        self._random = random_bytes
        # One cipher for the app (its key and IV never change); each message gets a context.
        self._cipher = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return signature(self._token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """BadSignature unless `msg_signature` signs these values with this app's Token."""
        expected = self.sign(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode("utf-8")):
            raise BadSignature("msg_signature does not match")

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside a ciphertext, checked down to its padding and receive id."""
        try:
            sealed = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise BadPayload("the ciphertext is not base64") from None
        if not sealed or len(sealed) % BLOCK:
            raise BadPayload(f"a ciphertext of {len(sealed)} bytes is not whole 32-byte blocks")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(sealed) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise BadPayload("bad padding")
        body = plain[16:-pad]
        if len(body) < 4:
            raise BadPayload("too short for a length")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise BadPayload("the inner length runs past the end")
        message, receive_id = body[4 : 4 + length], body[4 + length :]
        if receive_id != self._receive_id:
            raise BadCorpId("for another receive id")
        return message

    def encrypt(self, message: bytes) -> str:
        """The base64 ciphertext of `message` for this app's receive id."""
        plain = self._random(16) + struct.pack(">I", len(message)) + message + self._receive_id
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> bytes:
        """The GET verification: check the signature over echostr, answer its plaintext."""
        self.verify(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def open(self, body: bytes | str, msg_signature: str, timestamp: str, nonce: str) -> bytes:
        """A POSTed callback envelope (`<xml><Encrypt>…`) to the plaintext XML it carries."""
        encrypt = parse_xml(body).findtext("Encrypt")
        if not encrypt:
            raise BadPayload("no Encrypt element")
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, message: bytes | str, timestamp: str, nonce: str) -> Sealed:
        """`message` encrypted and signed: a passive reply, or a callback as WeCom sends it."""
        data = message.encode("utf-8") if isinstance(message, str) else message
        encrypt = self.encrypt(data)
        return Sealed(encrypt, self.sign(timestamp, nonce, encrypt), timestamp, nonce)
