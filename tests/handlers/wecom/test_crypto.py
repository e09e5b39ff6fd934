"""WeCom's callback crypto against WeCom's own published sample values, in both directions:
what WeCom sent decrypts and verifies, and what we seal is byte for byte what WeCom sealed.

Sources of the vectors:
- Token "QDG6eK", EncodingAESKey "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", CorpID
  "wx5823bf96d3bd56c7": the example of WeCom's 加解密方案说明 (developer.work.weixin.qq.com
  document/path/91144, 举例说明) and of the Sample files of WeCom's crypto libraries
  (加解密库下载, document/path/90968): the C# and PHP samples (VerifyURL with msg_signature
  5c45ff5e…, DecryptMsg with 477715d1…), repeated in the npm package wework-crypt's README.
- Token "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", EncodingAESKey "6qkdMrq68nTK…", CorpID
  "ww1436e0e65a779aee": WeCom's Python sample, github.com/sbzhu/weworkapi_python
  callback/Sample.py (the library that page links).
- The fixed-random encryption: wechatpy tests/test_crypto.py (test_encrypt_message), whose
  expected ciphertext was made with WeCom's algorithm and random "1234567890123456".
"""

from __future__ import annotations

import base64
import struct
from xml.etree.ElementTree import XMLParser

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DTDForbidden

from handlers.wecom.crypto import (
    BadCorpId,
    BadPayload,
    BadSignature,
    WeComCrypto,
    _NoDTD,
    aes_key_of,
    parse_xml,
    signature,
)
from handlers.wecom.messages import TextMessage, parse

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO"
    "+FZXvnaqQ==",
}
ECHO = b"1616140317555161061"

MESSAGE = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813"}
MESSAGE["nonce"] = "1372623149"
ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
    "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
    "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    f"<Encrypt><![CDATA[{ENCRYPT}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
PLAIN = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    b"<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    b"<CreateTime>1409659813</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n"
    b"<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n"
    b"<AgentID>218</AgentID>\n"
    b"</xml>"
)
RANDOM = b"0960688932c47ef1"  # the 16 random bytes WeCom put in front of PLAIN above


def sample() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def test_the_published_url_verification_answers_its_echo() -> None:
    assert sample().verify_url(*VERIFY.values()) == ECHO


def test_the_published_message_decrypts_to_hello_from_mycreate() -> None:
    plain = sample().open(BODY, *MESSAGE.values())

    assert plain == PLAIN
    event = parse(plain)
    assert isinstance(event, TextMessage)
    assert (event.user, event.content, event.msg_id, event.agent_id, event.created) == (
        "mycreate",
        "hello",
        "4561255354251345929",
        218,
        1409659813,
    )


def test_sealing_the_published_message_gives_wecoms_own_ciphertext_and_signature() -> None:
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID, random_bytes=lambda n: RANDOM[:n])

    sealed = crypto.seal(PLAIN, MESSAGE["timestamp"], MESSAGE["nonce"])

    assert sealed.encrypt == ENCRYPT
    assert sealed.signature == MESSAGE["msg_signature"]
    assert (
        signature(TOKEN, VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"])
        == (VERIFY["msg_signature"])
    )


def test_wecoms_python_sample_verifies_and_decrypts_too() -> None:
    crypto = WeComCrypto(
        "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        "ww1436e0e65a779aee",
    )
    echo = crypto.verify_url(
        "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
        "1476416373",
        "47744683",
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
    )
    body = (
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA["
        "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3Ny"
        "eTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqf"
        "de0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2p"
        "FrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg8"
        "4EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n"
        "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
    )

    plain = crypto.open(
        body, "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914"
    )

    assert echo == b"1288432023552776189"
    event = parse(plain)
    assert isinstance(event, TextMessage)
    assert (event.user, event.content, event.agent_id) == ("ChenJiaShun", "你好", 1000002)


def test_a_passive_reply_sealed_with_fixed_random_matches_wechatpys_vector() -> None:
    crypto = WeComCrypto(
        "123456",
        "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        "wx49f0ab532d5d035a",
        random_bytes=lambda n: b"1234567890123456"[:n],
    )
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
        "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
        "<CreateTime>1411525903</CreateTime>\n</xml>"
    )

    sealed = crypto.seal(reply, "1411525903", "461056294")

    assert sealed.signature == "407518b7649e86ef23978113f92d27afa9296533"
    assert sealed.encrypt.startswith("9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhS")
    assert sealed.encrypt.endswith("ypD3WeK2XeFYFMNMpatF9XiKzHo3")
    assert sealed.xml().startswith(f"<xml><Encrypt><![CDATA[{sealed.encrypt}]]></Encrypt>")


def test_what_we_seal_we_open_in_chinese_and_at_every_padding_length() -> None:
    crypto = sample()
    for size in range(0, 70):
        message = ("打卡" * size)[:size].encode()
        sealed = crypto.seal(message, "1700000000", "42")
        assert len(base64.b64decode(sealed.encrypt)) % 32 == 0
        assert crypto.open(sealed.xml(), sealed.signature, "1700000000", "42") == message


def test_a_tampered_signature_a_wrong_token_or_a_missing_one_is_bad_signature() -> None:
    crypto = sample()
    tampered = "0" + MESSAGE["msg_signature"][1:]
    with pytest.raises(BadSignature):
        crypto.open(BODY, tampered, MESSAGE["timestamp"], MESSAGE["nonce"])
    with pytest.raises(BadSignature):  # the timestamp is signed too
        crypto.open(BODY, MESSAGE["msg_signature"], "1409659814", MESSAGE["nonce"])
    with pytest.raises(BadSignature):
        WeComCrypto("another", AES_KEY, CORP_ID).verify_url(*VERIFY.values())
    with pytest.raises(BadSignature):
        crypto.verify_url("", VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"])


def test_a_message_for_another_corp_is_bad_corp_id() -> None:
    with pytest.raises(BadCorpId):
        WeComCrypto(TOKEN, AES_KEY, "ww-another-corp").open(BODY, *MESSAGE.values())


def sealed_raw(plain: bytes) -> str:
    """`plain` encrypted as it is (no padding added): to make broken ciphertexts."""
    key = aes_key_of(AES_KEY)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def signed(encrypt: str) -> tuple[str, str, str, str]:
    return signature(TOKEN, "1", "2", encrypt), "1", "2", encrypt


@pytest.mark.parametrize(
    ("encrypt", "problem"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"x" * 31).decode(), "32-byte blocks"),
        ("", "32-byte blocks"),
        (sealed_raw(b"r" * 16 + struct.pack(">I", 3) + b"abc" + b"\x00" * 9), "bad padding"),
        (sealed_raw(b"r" * 16 + struct.pack(">I", 3) + b"abc" + b"\x21" * 9), "bad padding"),
        (sealed_raw(b"r" * 16 + b"ab" + b"\x0e" * 14), "too short"),
        (sealed_raw(b"r" * 16 + struct.pack(">I", 999) + b"abc" + b"\x09" * 9), "past the end"),
    ],
)
def test_malformed_ciphertexts_are_bad_payload(encrypt: str, problem: str) -> None:
    with pytest.raises(BadPayload, match=problem):
        sample().verify_url(*signed(encrypt))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<xml><Encrypt>",
        "not xml at all",
        "<xml><ToUserName>wx</ToUserName></xml>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<xml><Encrypt>&b;</Encrypt></xml>",
        '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>x</Encrypt></xml>',
        "<xml>" + "<a>" * 300_000 + "</xml>",
    ],
)
def test_malformed_or_hostile_xml_is_bad_payload(body: str) -> None:
    with pytest.raises(BadPayload):
        sample().open(body, *MESSAGE.values())


@pytest.mark.parametrize("encoding", ["bogus", "rot13", "zlib", "base64", "cp500"])
def test_an_envelope_in_an_encoding_expat_cannot_read_is_bad_payload(encoding: str) -> None:
    """Regression: pyexpat raised LookupError for these, which escaped as a 500 with a
    traceback; the envelope is read before its signature is checked, so anyone can send it."""
    body = f'<?xml version="1.0" encoding="{encoding}"?><xml><Encrypt>x</Encrypt></xml>'
    with pytest.raises(BadPayload):
        sample().open(body.encode("ascii"), *MESSAGE.values())


LAUGHS = (
    '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
)


@pytest.mark.parametrize(
    "data",
    [
        LAUGHS.encode(),
        b"\xef\xbb\xbf" + LAUGHS.encode(),  # UTF-8 with its BOM
        LAUGHS.encode("utf-16"),  # no "<!DOCTYPE" bytes: read by defusedxml, which refuses it
        LAUGHS.encode("utf-16-le"),  # nor a BOM
        ('<?xml version="1.0" encoding="UTF-16"?>' + LAUGHS).encode("utf-16-be"),
        ('<?xml version="1.0" encoding="ISO-8859-1"?>' + LAUGHS).encode("latin-1"),
        '<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml/>'.encode("utf-16"),
        b"<xml><Encrypt>&a;</Encrypt></xml>",  # an entity never declared
    ],
)
def test_a_dtd_or_entity_is_refused_in_any_encoding(data: bytes) -> None:
    with pytest.raises(BadPayload):
        parse_xml(data)


def test_the_fast_parsers_tree_builder_refuses_a_dtd_by_itself() -> None:
    """The second guard, should a DTD ever reach ElementTree's C parser."""
    parser = XMLParser(target=_NoDTD())
    with pytest.raises(DTDForbidden):
        parser.feed(LAUGHS.encode())
        parser.close()


@pytest.mark.parametrize(
    "data",
    [
        b"<xml><Content><![CDATA[<!DOCTYPE html> & <!ENTITY>]]></Content></xml>",
        "<xml><Content><![CDATA[<!DOCTYPE html> & <!ENTITY>]]></Content></xml>",
        "<xml><Content>中文 &lt;&amp;&gt;</Content></xml>".encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-8"?><xml><Content>中文</Content></xml>'.encode(),
    ],
)
def test_text_that_only_looks_like_a_dtd_and_other_encodings_are_read(data: bytes | str) -> None:
    """Documents the fast parser leaves to defusedxml read as before."""
    content = parse_xml(data).findtext("Content") or ""
    assert content.startswith(("<!DOCTYPE html>", "中文"))


def test_an_encoding_aes_key_is_43_base64_characters() -> None:
    assert len(aes_key_of(AES_KEY)) == 32
    for wrong in (AES_KEY[:-1], AES_KEY + "A", AES_KEY[:-1] + "-"):
        with pytest.raises(ValueError, match="43 base64 characters"):
            WeComCrypto(TOKEN, wrong, CORP_ID)
