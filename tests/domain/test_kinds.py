"""Question kinds: the registry, each kind's inputs, prompts, buttons and formats, and a new
kind added as one class."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterator, Mapping
from datetime import date
from typing import Any, ClassVar

import pytest

from domain import forms, kinds
from domain.conversation.drafts import SKIP, AnswerKey, Draft
from domain.conversation.io import Ask, Document, Location, Option, Photo, Press, Text
from domain.forms import FormError, Question, format_answer, load_form, parse_form
from domain.i18n import _, speaking
from domain.kinds import Answered, AnswerError, Asking, Kind, Staying
from domain.kinds.base import AbnormalRule, ErrorTexts
from domain.kinds.checks import optional_number
from storage.export import AnswerCells, answer_text

HEALTH = load_form("health")


@pytest.fixture(autouse=True)
def chinese() -> Iterator[None]:
    """The texts of Daka's own (not the form's) follow the conversation's language."""
    with speaking("zh"):
        yield


def draft(answers: dict[str, Any] | None = None, **data: Any) -> Draft:
    made = Draft.new(day=date(2026, 11, 28), form=HEALTH, member_id=1)
    made.answers.update(answers or {})
    made.data.update(data)
    return made


def values(asking: Asking) -> list[str]:
    """The values of the buttons offered (their keys unpacked)."""
    return [AnswerKey.unpack(o.key).value for row in asking.options for o in row if o.key]


def refused(kind: Kind, q: Question, given: Any, d: Draft | None = None) -> str:
    with pytest.raises(AnswerError) as caught:
        kind.accept(q, given, d or draft())
    return caught.value.code


# -- the registry -----------------------------------------------------------------------------


def test_every_kind_is_registered_once_in_its_order() -> None:
    assert kinds.names() == ("location", "number", "choice", "multi", "yesno", "text", "photo")
    assert kinds.names() == forms.KINDS
    for name in kinds.names():
        assert kinds.get(name).name == name
        assert isinstance(kinds.get(name), Kind)
    with pytest.raises(KeyError):
        kinds.get("slider")
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(type(kinds.get("text")))


def test_questions_know_their_kind() -> None:
    assert [q.kind_of.name for q in HEALTH.questions] == [q.kind for q in HEALTH.questions]


def test_each_kind_allows_only_its_own_yaml_keys() -> None:
    assert kinds.get("number").keys == {"min", "max", "decimals", "unit"}
    assert kinds.get("text").keys == {"max_length"}
    assert kinds.get("location").keys == frozenset()
    assert kinds.get("location").abnormal_keys == frozenset()  # it cannot be abnormal
    assert kinds.get("multi").abnormal_keys == {"any", "in"}


def test_every_refusal_has_its_own_text_in_both_languages() -> None:
    codes = {
        name: set(kind.errors) | set(kinds.base.SHARED_ERRORS)
        for name, kind in kinds.REGISTRY.items()
    }
    for name, names in codes.items():
        kind = kinds.get(name)
        for code in names:
            error = AnswerError(code, min=35.0, max=42.0, decimals=1, max_length=200)
            with speaking("en"):
                english = kind.error_text(error)
            with speaking("zh"):
                chinese = kind.error_text(error)
            assert english != chinese and "{" not in english + chinese, (name, code)
    with speaking("en"):
        assert kinds.get("number").error_text(AnswerError("too_low", min=35.0, max=42.0)) == (
            "That is too low. Please send a number from 35.0 to 42.0."
        )
        assert (
            kinds.get("text")
            .error_text(AnswerError("no_such_code"))
            .startswith("I could not use that answer")
        )


# -- each kind --------------------------------------------------------------------------------


def test_location() -> None:
    kind, q = kinds.get("location"), HEALTH.question("location")
    asking = kind.ask(q, draft(), "zh")
    assert asking.ask is Ask.LOCATION and asking.options == []
    assert asking.text == "请发送您当前所在的位置。"  # how: the channel says (its picker)
    accepted = kind.accept(q, Location(39.9, 116.4, accuracy=8.0, live=True), draft())
    assert accepted == Answered({"lat": 39.9, "lon": 116.4, "accuracy": 8.0, "live": True})
    assert refused(kind, q, Location(39.9, 116.4, forwarded=True)) == "forwarded_location"
    assert refused(kind, q, Location(91.0, 0.0)) == "location_out_of_range"
    assert refused(kind, q, Text("我在家")) == "need_location"
    assert refused(kind, q, Press("x")) == "unknown_option"
    live = {"lat": 39.9, "lon": 116.4, "accuracy": None, "live": True}
    assert kind.format(q, live, "en") == "39.90000, 116.40000 (live)"
    assert kind.cell(q, live) == "39.90000, 116.40000"
    assert kind.cell(q, {"lat": 39, "lon": 116}) == "39.00000, 116.00000"
    assert kind.cell_key(q, live) is None
    with pytest.raises(TypeError):
        kind.cell(q, "somewhere")


def test_number() -> None:
    kind, q = kinds.get("number"), HEALTH.question("temperature")
    with speaking("en"):
        asking = kind.ask(q, draft(), "en")
    assert asking.text.endswith("\nSend a number from 35.0 to 42.0 °C.")
    assert asking.options == [] and asking.ask is None
    assert kind.accept(q, Text("36,6℃"), draft()) == Answered(36.6)
    assert refused(kind, q, Text("42.5")) == "too_high"
    assert refused(kind, q, Photo("p")) == "need_number"
    assert refused(kind, q, Text("")) == "need_number"
    assert kind.format(q, 37.0, "zh") == "37.0 °C"
    assert kind.cell_key(q, 37.0) == ("temperature", float, 37.0)
    assert kind.abnormal(q, AbnormalRule(gte=37.3), 37.3)
    assert not kind.abnormal(q, AbnormalRule(gte=37.3), 37.2)
    bare = Question(id="n", kind="number", text={"zh": "数", "en": "N"}, required=False)
    asking = kind.ask(bare, draft(), "zh")
    assert asking.text == "数" and values(asking) == [SKIP]  # no range: no hint


DEMO = parse_form(
    {
        "version": 1,
        "title": {"zh": "演示", "en": "Demo"},
        "questions": [
            {
                "id": "mood",
                "kind": "choice",
                "text": {"zh": "心情？", "en": "Mood?"},
                "required": False,
                "options": [
                    {"id": "good", "text": {"zh": "好", "en": "Good"}},
                    {"id": "bad", "text": {"zh": "差", "en": "Bad"}},
                ],
            },
            {"id": "note", "kind": "text", "text": {"zh": "备注", "en": "Note"}},
            {
                "id": "travel",
                "kind": "yesno",
                "text": {"zh": "出行？", "en": "Travel?"},
                "required": False,
            },
        ],
    },
    name="demo",
)


def test_choice() -> None:
    kind, q = kinds.get("choice"), DEMO.question("mood")
    d = draft()
    with speaking("en"):
        asking = kind.ask(q, d, "en")
    assert [[o.label for o in row] for row in asking.options] == [["Good"], ["Bad"], ["⏭ Skip"]]
    assert asking.options[0][0] == Option("Good", d.key("mood", "good"))
    assert values(asking) == ["good", "bad", SKIP]
    assert kind.accept(q, Press("bad"), d) == Answered("bad")
    assert refused(kind, q, Press("awful")) == "unknown_option"
    assert refused(kind, q, Text("bad")) == "use_buttons"
    assert kind.format(q, "bad", "zh") == "差"
    assert kind.format(q, "gone", "zh") == "gone"  # an option a newer form dropped


def test_multi() -> None:
    kind, q = kinds.get("multi"), HEALTH.question("symptoms")
    d = draft({"symptoms": ["cough"]})
    kind.enter(q, d)
    assert d.data["selected"] == ["cough"]
    asking = kind.ask(q, d, "zh")
    labels = [o.label for row in asking.options for o in row]
    assert labels[:2] == ["⬜ 发热", "☑️ 咳嗽"] and labels[-1] == "完成 ✔"
    assert SKIP not in values(asking)  # Done with nothing ticked is how an optional one skips
    assert kind.accept(q, Press("fever"), d) is Staying.OPTIONS
    assert d.data["selected"] == ["fever", "cough"]
    assert kind.accept(q, Press("none"), d) is Staying.OPTIONS
    assert d.data["selected"] == ["none"]
    assert kind.accept(q, Press("__done"), d) == Answered(["none"])
    assert refused(kind, q, Press("__done"), draft(selected=[])) == "required"
    assert refused(kind, q, Press("headache"), d) == "unknown_option"
    assert refused(kind, q, Text("发热"), d) == "use_buttons"
    assert kind.format(q, ["fever", "cough"], "en") == "Fever, Cough"
    assert kind.format(q, [], "zh") == "未填"
    assert kind.cell(q, []) == "" and kind.cell_key(q, ["fever"]) == ("symptoms", ("fever",))
    assert kind.abnormal(q, q.abnormal or AbnormalRule(), ["other"])
    assert not kind.abnormal(q, q.abnormal or AbnormalRule(), ["none"])


def test_multi_takes_the_boxes_ticked_on_the_channels_side_with_done() -> None:
    kind, q = kinds.get("multi"), HEALTH.question("symptoms")
    d = draft(selected=["cough"])
    asking = kind.ask(q, d, "zh")
    options = [o for row in asking.options for o in row]
    assert [o.box.text for o in options if o.box][:2] == ["发热", "咳嗽"]
    assert [o.box.ticked for o in options if o.box][:2] == [False, True]
    assert [o.label for o in options if o.submit] == ["完成 ✔"]
    assert options[-1].box is None and not any(o.submit for o in options[:-1])

    sent = Press("__done", chosen=("other", "fever", "none", "fever"))
    assert kind.accept(q, sent, d) == Answered(["fever", "other"])  # form order, once each
    assert kind.accept(q, Press("__done", chosen=("none",)), d) == Answered(["none"])
    assert d.data["selected"] == ["cough"]  # the ticks toggled here are not the answer
    assert refused(kind, q, Press("__done", chosen=()), d) == "required"
    assert refused(kind, q, Press("__done", chosen=("fever", "plague")), d) == "unknown_choice"
    assert refused(kind, q, Press("fever", chosen=("fever",)), d) == "unknown_option"
    optional = dataclasses.replace(q, required=False)
    assert kind.accept(optional, Press("__done", chosen=()), d) == Answered([])


def test_yesno() -> None:
    kind, q = kinds.get("yesno"), HEALTH.question("exposure")
    d = draft()
    asking = kind.ask(q, d, "zh")
    assert values(asking) == ["__yes", "__no"]
    assert kind.accept(q, Press("__no"), d) == Answered({"yes": False, "detail": None})
    assert refused(kind, q, Text("没有"), d) == "use_buttons"
    assert kind.accept(q, Press("__yes"), d) is Staying.QUESTION  # it has a follow-up
    asking = kind.ask(q, d, "zh")
    assert asking.text.startswith("请简要说明具体情况") and asking.options == []
    assert refused(kind, q, Photo("p"), d) == "need_details"
    assert refused(kind, q, Text("  "), d) == "empty"
    assert kind.accept(q, Text(" 武汉 "), d) == Answered({"yes": True, "detail": "武汉"})
    assert d.data["follow_up"] is False
    assert refused(kind, q, Press("maybe"), d) == "unknown_option"
    assert kind.format(q, {"yes": True, "detail": "Wuhan"}, "en") == "Yes (Wuhan)"
    travel = DEMO.question("travel")  # optional, no follow-up
    assert values(kind.ask(travel, d, "en")) == ["__yes", "__no", SKIP]
    assert kind.accept(travel, Press("__yes"), d) == Answered({"yes": True, "detail": None})


def test_text() -> None:
    kind, q = kinds.get("text"), DEMO.question("note")
    asking = kind.ask(q, draft(), "zh")
    assert asking == Asking("备注")  # required: no Skip
    assert kind.accept(q, Text(" 头晕 "), draft()) == Answered("头晕")
    assert refused(kind, q, Text("x" * 201)) == "too_long"
    assert refused(kind, q, Document("d", "a.txt")) == "need_text"
    assert refused(kind, q, Press(SKIP)) == "unknown_option"  # Skip is the core's to take
    assert kind.format(q, "头晕", "en") == "头晕"


def test_photo() -> None:
    kind, q = kinds.get("photo"), HEALTH.question("photo")
    with speaking("en"):
        asking = kind.ask(q, draft(), "en")
    assert "not forwarded" in asking.text and values(asking) == [SKIP]
    assert kind.accept(q, Photo("AgAC"), draft()) == Answered("AgAC")
    assert refused(kind, q, Photo("AgAC", forwarded=True)) == "forwarded_photo"
    assert refused(kind, q, Text("no")) == "need_photo"
    assert kind.format(q, "AgAC", "zh") == "已附照片"


# -- a new kind -------------------------------------------------------------------------------


class RatingKind(Kind):
    """1 to `stars` stars, pressed; abnormal at or below `lte`."""

    name = "rating"
    keys = frozenset({"stars"})
    abnormal_keys = frozenset({"lte"})
    errors: ClassVar[ErrorTexts] = {"need_stars": lambda: _("Please choose one of the buttons.")}

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        stars = optional_number(raw, "stars", where) or 5
        if not 2 <= stars <= 10:
            raise FormError(f"{where}: 'stars' must be 2 to 10")
        return {"max": stars}

    def ask(self, q: Question, draft: Draft, lang: str) -> Asking:
        assert q.max is not None
        stars = [Option("★" * n, draft.key(q.id, str(n))) for n in range(1, int(q.max) + 1)]
        return Asking(self.prompt(q, lang), [stars, *self.skip_row(q, draft)])

    def press(self, q: Question, value: str, draft: Draft) -> Answered:
        if not value.isdigit() or not 1 <= int(value) <= (q.max or 5):
            raise AnswerError("need_stars")
        return Answered(int(value))

    def format(self, q: Question, value: object, lang: str) -> str:
        if not isinstance(value, int):
            raise TypeError(f"expected a number of stars, got {value!r}")
        return "★" * value

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        return (q.id, value) if type(value) is int else None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        return rule.lte is not None and isinstance(value, int) and value <= rule.lte


@pytest.fixture
def rating() -> Iterator[Kind]:
    kinds.register(RatingKind)
    try:
        yield kinds.get("rating")
    finally:
        del kinds.REGISTRY["rating"]


def rated(**question: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "title": {"zh": "评分", "en": "Rating"},
        "questions": [
            {"id": "day", "kind": "rating", "text": {"zh": "今天？", "en": "Today?"}, **question}
        ],
    }


def test_a_new_kind_is_one_class_registered(rating: Kind) -> None:
    form = parse_form(rated(stars=3, abnormal={"lte": 1}), name="rated")
    q = form.question("day")
    assert q.kind_of is rating and q.max == 3 and q.abnormal == AbnormalRule(lte=1.0)
    d = draft()
    assert values(rating.ask(q, d, "zh")) == ["1", "2", "3"]
    assert rating.accept(q, Press("1"), d) == Answered(1)
    with speaking("zh"):
        with pytest.raises(AnswerError) as caught:
            rating.accept(q, Press("4"), d)
        assert rating.error_text(caught.value) == "请点击下方按钮进行选择。"
    assert refused(rating, q, Text("1")) == "use_buttons"
    assert forms.abnormal_reasons(form, {"day": 1}) == ["day"]
    assert forms.abnormal_reasons(form, {"day": 3}) == []
    assert format_answer(q, 2, "en") == "★★" and format_answer(q, None, "en") == "skipped"
    cells = AnswerCells()
    assert cells(q, 2) == "★★" == answer_text(q, 2) and answer_text(q, "x") == '"x"'


def test_a_new_kinds_yaml_is_checked_like_the_others(rating: Kind) -> None:
    with pytest.raises(FormError, match=r"unknown key\(s\) 'max' for a rating question"):
        parse_form(rated(max=3), name="rated")
    with pytest.raises(FormError, match=r"'stars' must be 2 to 10"):
        parse_form(rated(stars=11), name="rated")
    with pytest.raises(FormError, match=r"'abnormal': unknown key\(s\) 'gte'"):
        parse_form(rated(abnormal={"gte": 4}), name="rated")


def test_an_unregistered_kind_is_refused_by_name() -> None:
    with pytest.raises(FormError, match=r"unknown kind 'rating' \(known: location, number"):
        parse_form(rated(), name="rated")
