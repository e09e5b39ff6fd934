"""The one WeCom error policy: what an errcode means, in the neutral outcomes of
`domain.delivery`, for everything that calls WeCom's API (the client, and through it the
courier and the replies). Codes from WeCom's global table (Doc 90313) and Doc 90236."""

from __future__ import annotations

from typing import Final

from domain.delivery import Failure, Refused, RetryAfter, Transient, Unreachable

TOKEN_REFUSED: Final = frozenset({40014, 42001})  # invalid, expired: fetch anew, retry once
RATE_LIMITED: Final = {45009: 60.0, 45033: 2.0}
"""接口调用超过限制 and 接口并发调用超过限制 (Doc 90313): pause that many seconds. WeCom names no
wait; its limits are counted per minute. (45047 is the Official Account's, not WeCom's.)"""
UNREACHABLE: Final = frozenset({40003, 46004, 50002, 60111, 81013})
"""Invalid userid, no such member, member outside the app's visible range, all recipients
invalid or without permission (Doc 90313; 81013 per Doc 90236)."""
SETUP: Final = {
    40001: "WeCom refused WECOM_SECRET",
    40013: "WeCom refused WECOM_CORP_ID",
    40056: "WeCom refused WECOM_AGENT_ID",
    41001: "no access_token was sent",
    48002: "the app may not call this API",
    50003: "the app is disabled in WeCom's admin console",
    60020: "this server's IP is not among the app's trusted IPs (企业可信IP)",
}
"""The deployment, not the message, is wrong: worth trying again once an admin has fixed it."""


def failure_of(errcode: int, errmsg: str = "") -> Failure:
    """WeCom's errcode (never 0) as a neutral outcome: the one error policy of this client."""
    detail = f"WeCom errcode {errcode}: {errmsg}".strip().rstrip(":")
    if errcode == -1:  # 系统繁忙
        return Transient(detail)
    if errcode in RATE_LIMITED:
        return RetryAfter(RATE_LIMITED[errcode], detail)
    if errcode in UNREACHABLE:
        return Unreachable(detail)
    if errcode in SETUP:
        return Transient(f"{SETUP[errcode]} ({detail})")
    if errcode in TOKEN_REFUSED:
        return Transient(f"the access_token was refused again after a fresh one ({detail})")
    return Refused(detail)
