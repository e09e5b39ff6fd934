"""Which language a person is answered in: one rule for every channel (domain.i18n.choose_language,
Visitor.language), so a person reads the same language on Telegram and on WeCom."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.conversation.turn import Visitor
from domain.i18n import choose_language
from storage.models import Account, Organisation

SEEN = datetime(2026, 12, 7, tzinfo=UTC)


def test_the_language_they_chose_comes_first() -> None:
    assert choose_language("en", "zh", "zh") == "en"
    assert choose_language("zh", "en", "en") == "zh"


def test_without_a_choice_their_channel_says_which_they_use() -> None:
    assert choose_language(None, "en", "zh") == "en"


def test_without_either_their_organisation_speaks_for_them() -> None:
    assert choose_language(None, None, "en") == "en"


def test_nobody_saying_anything_gets_chinese() -> None:
    assert choose_language(None, None, None) == "zh"


def test_a_language_daka_does_not_speak_is_passed_over() -> None:
    assert choose_language("fr", "de", "en") == "en"
    assert choose_language(None, "fr", None) == "zh"
    assert choose_language("", "en", None) == "en"


def test_a_visitor_is_answered_by_the_same_rule() -> None:
    school = Organisation(slug="school", name="School", language="en", created_at=SEEN)
    newcomer = Visitor(channel="wecom", external_id="lei", account=None)
    assert newcomer.language(None) == "zh"
    assert newcomer.language("en") == "en"
    enrolled = Visitor("wecom", "lei", account=Account(language=None, first_seen=SEEN), org=school)
    assert enrolled.language(None) == "en"
    assert enrolled.language("zh") == "zh"
    enrolled.account = Account(language="zh", first_seen=SEEN)
    assert enrolled.language("en") == "zh"
