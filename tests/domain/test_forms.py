"""Behaviour of the declarative form engine and the two shipped forms."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest

from domain.forms import (
    AbnormalRule,
    AnswerError,
    Form,
    FormError,
    Question,
    abnormal_reasons,
    available_forms,
    choose,
    finish_multi,
    form_from_yaml,
    format_answer,
    load_form,
    location_answer,
    parse_follow_up,
    parse_form,
    parse_number,
    parse_text,
    skip,
    toggle,
    yesno_answer,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def health() -> Form:
    return load_form("health")


@pytest.fixture
def temperature(health: Form) -> Question:
    return health.question("temperature")


@pytest.fixture
def symptoms(health: Form) -> Question:
    return health.question("symptoms")


def healthy_answers() -> dict[str, object]:
    return {
        "location": location_answer(30.5928, 114.3055, accuracy=12.0),
        "temperature": 36.6,
        "symptoms": ["none"],
        "exposure": yesno_answer(False),
        "photo": None,
    }


def unwell_answers() -> dict[str, object]:
    return {
        "location": location_answer(30.5928, 114.3055, live=True),
        "temperature": 38.1,
        "symptoms": ["fever", "cough"],
        "exposure": yesno_answer(True, "3月2日 途经武汉"),
        "photo": "AgACAgIAAxkBAAIBQ2Zphoto",
    }


# -- shipped forms ---------------------------------------------------------------------------


def test_both_shipped_forms_are_available_and_load() -> None:
    assert {"health", "location"} <= set(available_forms())
    assert load_form("location").version == 1
    assert [q.kind for q in load_form("location").questions] == ["location"]


def test_health_form_matches_the_spec(health: Form) -> None:
    assert health.version == 1
    assert [q.id for q in health.questions] == [
        "location",
        "temperature",
        "symptoms",
        "exposure",
        "photo",
    ]
    kinds = {q.id: q.kind for q in health.questions}
    assert kinds == {
        "location": "location",
        "temperature": "number",
        "symptoms": "multi",
        "exposure": "yesno",
        "photo": "photo",
    }
    temp = health.question("temperature")
    assert (temp.min, temp.max, temp.decimals, temp.unit) == (35.0, 42.0, 1, "°C")
    assert temp.abnormal == AbnormalRule(gte=37.3)
    sym = health.question("symptoms")
    assert [o.id for o in sym.options] == [
        "fever",
        "cough",
        "sore_throat",
        "fatigue",
        "taste_smell",
        "other",
        "none",
    ]
    assert sym.exclusive_option is not None and sym.exclusive_option.id == "none"
    assert sym.option("none").label("zh") == "以上都没有"
    exposure = health.question("exposure")
    assert exposure.abnormal == AbnormalRule(yes=True)
    assert exposure.prompt("zh") == "近14天内是否接触过确诊或疑似病例，或途经中高风险地区？"
    assert exposure.prompt("en") == (
        "In the last 14 days, have you had contact with a confirmed or suspected case, "
        "or travelled through a risk area?"
    )
    assert exposure.follow_up_prompt("zh") is not None
    assert health.question("photo").required is False
    assert all(q.required for q in health.questions if q.id != "photo")
    assert [q.label("zh") for q in health.questions] == [
        "位置",
        "体温",
        "症状",
        "接触史/行程",
        "照片",
    ]


@pytest.mark.parametrize("name", ["health", "location"])
def test_shipped_texts_are_chinese_and_english(name: str) -> None:
    form = load_form(name)
    texts = [form.heading("zh")]
    english = [form.heading("en")]
    for q in form.questions:
        texts += [q.prompt("zh"), q.label("zh")] + [o.label("zh") for o in q.options]
        english += [q.prompt("en"), q.label("en")] + [o.label("en") for o in q.options]
        if q.follow_up is not None:
            texts.append(q.follow_up["zh"])
            english.append(q.follow_up["en"])
    assert all(CJK.search(t) for t in texts), texts
    assert not any(CJK.search(t) for t in english), english


def test_load_form_is_cached() -> None:
    assert load_form("health") is load_form("health")


def test_unknown_form_lists_the_available_ones() -> None:
    with pytest.raises(FormError, match=r"unknown form 'covid'.*health.*location"):
        load_form("covid")
    with pytest.raises(FormError, match="unknown form"):
        load_form("../pyproject")


def test_prompt_falls_back_to_chinese_and_accepts_region_codes(health: Form) -> None:
    q = health.question("temperature")
    assert q.prompt("en-US") == q.prompt("en")
    assert q.prompt("zh-hans") == q.prompt("zh")
    assert q.prompt("fr") == q.prompt("zh")


# -- parse_form validation ---------------------------------------------------------------------


def base_form() -> dict[str, Any]:
    return {
        "version": 2,
        "title": {"zh": "测试", "en": "Test"},
        "questions": [
            {"id": "temp", "kind": "number", "text": {"zh": "体温？", "en": "Temp?"}, "min": 35},
            {
                "id": "mood",
                "kind": "choice",
                "text": {"zh": "心情？", "en": "Mood?"},
                "options": [
                    {"id": "good", "text": {"zh": "好", "en": "Good"}},
                    {"id": "bad", "text": {"zh": "差", "en": "Bad"}},
                ],
                "abnormal": {"in": ["bad"]},
            },
            {
                "id": "sym",
                "kind": "multi",
                "text": {"zh": "症状？", "en": "Symptoms?"},
                "options": [
                    {"id": "cough", "text": {"zh": "咳嗽", "en": "Cough"}},
                    {"id": "none", "text": {"zh": "都没有", "en": "None"}, "exclusive": True},
                ],
            },
            {
                "id": "note",
                "kind": "text",
                "text": {"zh": "备注", "en": "Note"},
                "required": False,
            },
        ],
    }


def test_base_form_is_valid() -> None:
    form = parse_form(base_form(), name="demo")
    assert form.name == "demo"
    assert form.version == 2
    assert form.question("note").max_length == 200
    assert form.question("note").label("en") == "Note"  # no label: falls back to the prompt
    assert form.question("temp").decimals == 1


def _q(data: dict[str, Any], qid: str) -> dict[str, Any]:
    return next(q for q in data["questions"] if q["id"] == qid)


def _set(qid: str, **changes: object) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        _q(data, qid).update(changes)

    return mutate


def _drop_en_option_text(data: dict[str, Any]) -> None:
    del _q(data, "mood")["options"][0]["text"]["en"]


def _duplicate_question(data: dict[str, Any]) -> None:
    data["questions"].append(copy.deepcopy(_q(data, "mood")))


def _two_exclusive(data: dict[str, Any]) -> None:
    _q(data, "sym")["options"][0]["exclusive"] = True


def _duplicate_option(data: dict[str, Any]) -> None:
    options = _q(data, "mood")["options"]
    options.append(copy.deepcopy(options[0]))


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("duplicate question", _duplicate_question, r"question 'mood': duplicate question id"),
    ("unknown kind", _set("temp", kind="slider"), r"question 'temp': unknown kind 'slider'"),
    ("min not below max", _set("temp", min=42, max=35), r"question 'temp': 'min' \(42\)"),
    ("min equals max", _set("temp", min=40, max=40), r"must be less than 'max'"),
    ("choice without options", _set("mood", options=[]), r"question 'mood': .*needs 'options'"),
    (
        "multi with one option",
        _set("sym", options=[{"id": "a", "text": {"zh": "甲", "en": "A"}}]),
        r"question 'sym': .*at least two",
    ),
    ("two exclusive options", _two_exclusive, r"question 'sym': at most one exclusive"),
    (
        "exclusive on a choice",
        _set(
            "mood",
            options=[
                {"id": "a", "text": {"zh": "甲", "en": "A"}, "exclusive": True},
                {"id": "b", "text": {"zh": "乙", "en": "B"}},
            ],
        ),
        r"option 'a': only a multi",
    ),
    ("duplicate option", _duplicate_option, r"option 'good': duplicate option id"),
    (
        "missing en text",
        _set("temp", text={"zh": "体温？"}),
        r"question 'temp': 'text' is missing the en text",
    ),
    ("blank zh text", _set("temp", text={"zh": "  ", "en": "Temp?"}), r"missing the zh text"),
    ("option missing en", _drop_en_option_text, r"option 'good': 'text' is missing the en"),
    (
        "unknown language",
        _set("temp", text={"zh": "体温", "en": "T", "cn": "体温"}),
        r"unknown language",
    ),
    (
        "typo in a key",
        _set("note", max_lenght=50),
        r"question 'note': unknown key\(s\) 'max_lenght'",
    ),
    ("number key on text", _set("note", min=1), r"unknown key\(s\) 'min' for a text question"),
    ("bad id", _set("temp", id="Body Temp"), r"question #1: 'id' must be"),
    ("required not bool", _set("note", required="no"), r"question 'note': 'required' must be"),
    ("decimals negative", _set("temp", decimals=-1), r"'decimals' must be an integer"),
    ("max_length zero", _set("note", max_length=0), r"'max_length' must be a positive"),
    ("min not a number", _set("temp", min="35"), r"'min' must be a number"),
    (
        "abnormal on text",
        _set("note", abnormal={"any": True}),
        r"a text question cannot be abnormal",
    ),
    (
        "abnormal unknown option",
        _set("mood", abnormal={"in": ["awful"]}),
        r"unknown option 'awful'",
    ),
    (
        "abnormal names exclusive",
        _set("sym", abnormal={"in": ["none"]}),
        r"exclusive option 'none'",
    ),
    ("abnormal wrong rule", _set("temp", abnormal={"in": ["x"]}), r"unknown key\(s\) 'in'"),
    (
        "abnormal nan threshold",
        _set("temp", abnormal={"gte": float("nan")}),
        r"'gte' must be a number",
    ),
    ("abnormal any false", _set("sym", abnormal={"any": False}), r"'any' can only be true"),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [pytest.param(m, msg, id=case) for case, m, msg in MALFORMED],
)
def test_parse_form_rejects_malformed_definitions(
    mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = base_form()
    mutate(data)
    with pytest.raises(FormError, match=message) as caught:
        parse_form(data, name="demo")
    assert str(caught.value).startswith("form 'demo': ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 0}, r"'version' must be a positive integer"),
        ({"version": True}, r"'version' must be a positive integer"),
        ({"questions": []}, r"'questions' must be a non-empty list"),
        ({"title": {"zh": "测试"}}, r"'title' is missing the en text"),
        ({"titel": {"zh": "测试", "en": "Test"}}, r"unknown key\(s\) 'titel' for a form"),
    ],
)
def test_parse_form_rejects_malformed_top_level(change: dict[str, Any], message: str) -> None:
    data = {**base_form(), **change}
    with pytest.raises(FormError, match=message):
        parse_form(data, name="demo")


def test_parse_form_rejects_a_non_mapping() -> None:
    with pytest.raises(FormError, match="form 'demo': a form must be a mapping"):
        parse_form(["not", "a", "form"], name="demo")  # type: ignore[arg-type]


def test_yaml_errors_name_the_source() -> None:
    with pytest.raises(FormError, match=r"^custom\.yaml: not valid YAML"):
        form_from_yaml("version: [1\n", name="custom", source="custom.yaml")
    with pytest.raises(FormError, match=r"^custom\.yaml: question 'q': unknown kind"):
        form_from_yaml(
            "version: 1\ntitle: {zh: 题, en: T}\n"
            "questions:\n  - {id: q, kind: rating, text: {zh: 题, en: Q}}\n",
            name="custom",
            source="custom.yaml",
        )


def test_yaml_yes_and_no_stay_strings() -> None:
    form = form_from_yaml(
        """
version: 1
title: {zh: 题, en: T}
questions:
  - id: answer
    kind: choice
    text: {zh: 可以吗？, en: "OK?"}
    options:
      - {id: "yes", text: {zh: 是, en: Yes}}
      - {id: "no", text: {zh: 否, en: No}}
    abnormal: {in: [no]}
  - id: exposed
    kind: yesno
    text: {zh: 接触过吗？, en: "Exposed?"}
    abnormal: {yes: true}
""",
        name="custom",
    )
    answer = form.question("answer")
    assert answer.option("no").label("en") == "No"
    assert answer.abnormal == AbnormalRule(in_=frozenset({"no"}))
    assert form.question("exposed").abnormal == AbnormalRule(yes=True)


# -- lookup and navigation -------------------------------------------------------------------


def test_next_question_walks_the_form(health: Form) -> None:
    walked: list[str] = []
    q = health.next_question(None)
    while q is not None:
        walked.append(q.id)
        q = health.next_question(q.id)
    assert walked == ["location", "temperature", "symptoms", "exposure", "photo"]
    assert health.next_question("photo") is None
    assert health.index("symptoms") == 2


def test_unknown_ids_raise_key_error(health: Form, symptoms: Question) -> None:
    with pytest.raises(KeyError):
        health.question("mood")
    with pytest.raises(KeyError):
        health.next_question("mood")
    with pytest.raises(KeyError):
        symptoms.option("headache")


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("36.5", 36.5),
        (" 36,5 ", 36.5),
        ("３６．５", 36.5),
        ("３６，５", 36.5),
        ("36.5°C", 36.5),
        ("36.5℃", 36.5),
        ("36.5 °c", 36.5),
        ("36.5度", 36.5),
        ("37", 37.0),
        ("36.50", 36.5),
        ("35.0", 35.0),
        ("35", 35.0),
        ("42.0", 42.0),
        ("42", 42.0),
    ],
)
def test_parse_number_accepts(temperature: Question, text: str, expected: float) -> None:
    assert parse_number(temperature, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "",
        "  ",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "1e2",
        "36..5",
        "36.5.1",
        "3_6",
        "36,5,1",
        "°C",
    ],
)
def test_parse_number_rejects_non_numbers(temperature: Question, text: str) -> None:
    with pytest.raises(AnswerError) as caught:
        parse_number(temperature, text)
    assert caught.value.code == "not_a_number"


@pytest.mark.parametrize(
    ("text", "code"),
    [("45", "too_high"), ("42.1", "too_high"), ("34.9", "too_low"), ("-36.5", "too_low")],
)
def test_parse_number_enforces_the_range(temperature: Question, text: str, code: str) -> None:
    with pytest.raises(AnswerError) as caught:
        parse_number(temperature, text)
    assert caught.value.code == code
    assert caught.value.params == {"min": 35.0, "max": 42.0}


def test_parse_number_enforces_decimals(temperature: Question) -> None:
    with pytest.raises(AnswerError) as caught:
        parse_number(temperature, "36.55")
    assert caught.value.code == "too_many_decimals"
    assert caught.value.params == {"decimals": 1}


def test_parse_number_without_limits() -> None:
    q = Question(id="n", kind="number", text={"zh": "数", "en": "N"}, decimals=0)
    assert parse_number(q, "-12") == -12.0
    assert parse_number(q, "1000000") == 1_000_000.0
    with pytest.raises(AnswerError, match="too_many_decimals"):
        parse_number(q, "1.5")
    with pytest.raises(AnswerError, match="not_a_number"):
        parse_number(q, "9" * 400)  # would overflow to inf


def test_fever_threshold_is_37_3(temperature: Question) -> None:
    rule = temperature.abnormal
    assert rule is not None
    assert not rule.matches(temperature, parse_number(temperature, "37.2"))
    assert rule.matches(temperature, parse_number(temperature, "37.3"))
    assert rule.matches(temperature, parse_number(temperature, "37,3℃"))


def _abnormal(rule: AbnormalRule, values: tuple[float, ...]) -> list[bool]:
    q = Question(id="n", kind="number", text={"zh": "数", "en": "N"}, abnormal=rule)
    return [rule.matches(q, v) for v in values]


def test_other_number_thresholds() -> None:
    assert _abnormal(AbnormalRule(lt=95), (94.9, 95, 99)) == [True, False, False]
    assert _abnormal(AbnormalRule(gt=140), (140, 140.1)) == [False, True]
    assert _abnormal(AbnormalRule(lte=35.5, gte=37.3), (35.5, 36.5, 37.3)) == [True, False, True]
    assert _abnormal(AbnormalRule(), (0, 100)) == [False, False]


# -- choices ---------------------------------------------------------------------------------


def test_choose_validates_the_option(symptoms: Question) -> None:
    assert choose(symptoms, "cough") == "cough"
    with pytest.raises(AnswerError) as caught:
        choose(symptoms, "headache")
    assert caught.value.code == "unknown_option"
    assert caught.value.params == {"option": "headache"}


def test_toggle_keeps_none_exclusive(symptoms: Question) -> None:
    selected: tuple[str, ...] = ()
    selected = toggle(symptoms, selected, "cough")
    selected = toggle(symptoms, selected, "fever")
    assert selected == ("fever", "cough")  # form order, not click order
    selected = toggle(symptoms, selected, "none")
    assert selected == ("none",)
    selected = toggle(symptoms, selected, "fatigue")
    assert selected == ("fatigue",)
    selected = toggle(symptoms, selected, "taste_smell")
    selected = toggle(symptoms, selected, "fatigue")
    assert selected == ("taste_smell",)
    assert toggle(symptoms, selected, "taste_smell") == ()
    assert toggle(symptoms, ["none"], "none") == ()


def test_toggle_rejects_unknown_options(symptoms: Question) -> None:
    with pytest.raises(AnswerError, match="unknown_option"):
        toggle(symptoms, ["fever"], "headache")


def test_finish_multi(symptoms: Question) -> None:
    assert finish_multi(symptoms, ["cough", "fever"]) == ("fever", "cough")
    assert finish_multi(symptoms, ["none"]) == ("none",)
    assert finish_multi(symptoms, ["none", "cough"]) == ("cough",)
    with pytest.raises(AnswerError) as caught:
        finish_multi(symptoms, [])
    assert caught.value.code == "required"
    with pytest.raises(AnswerError, match="unknown_option"):
        finish_multi(symptoms, ["fever", "headache"])
    optional = parse_form(base_form(), name="demo").question("sym")
    optional = dataclasses.replace(optional, required=False)
    assert finish_multi(optional, []) == ()


def test_multi_abnormal_rules(symptoms: Question) -> None:
    rule = symptoms.abnormal
    assert rule is not None
    assert rule.matches(symptoms, ["other"])
    assert not rule.matches(symptoms, ["none"])
    assert not rule.matches(symptoms, [])
    only_fever = AbnormalRule(in_=frozenset({"fever"}))
    assert only_fever.matches(symptoms, ["cough", "fever"])
    assert not only_fever.matches(symptoms, ["cough"])


def test_choice_abnormal_rule() -> None:
    mood = parse_form(base_form(), name="demo").question("mood")
    assert mood.abnormal is not None
    assert mood.abnormal.matches(mood, "bad")
    assert not mood.abnormal.matches(mood, "good")


def test_answers_that_break_the_storage_contract_are_refused(temperature: Question) -> None:
    assert temperature.abnormal is not None
    with pytest.raises(TypeError):
        temperature.abnormal.matches(temperature, "37.5")
    with pytest.raises(TypeError):
        format_answer(temperature, True, "zh")


# -- text ------------------------------------------------------------------------------------


def test_parse_text() -> None:
    note = parse_form(base_form(), name="demo").question("note")
    assert parse_text(note, "  发烧了两天 \n") == "发烧了两天"
    with pytest.raises(AnswerError) as caught:
        parse_text(note, " \n ")
    assert caught.value.code == "empty"
    assert parse_text(note, "字" * 200) == "字" * 200
    with pytest.raises(AnswerError) as caught:
        parse_text(note, "字" * 201)
    assert caught.value.code == "too_long"
    assert caught.value.params["max_length"] == 200
    with pytest.raises(AnswerError) as caught:
        parse_text(note, "abcdef", max_length=5)
    assert caught.value.params["max_length"] == 5


def test_follow_up_uses_its_own_limit(health: Form) -> None:
    exposure = health.question("exposure")
    assert parse_follow_up(exposure, " 3月2日 武汉 ") == "3月2日 武汉"
    with pytest.raises(AnswerError, match="too_long"):
        parse_follow_up(exposure, "x" * (exposure.follow_up_max_length + 1))


def test_only_optional_questions_can_be_skipped(health: Form) -> None:
    skip(health.question("photo"))  # no error: the photo is optional
    with pytest.raises(AnswerError, match="required"):
        skip(health.question("temperature"))


def test_location_answer_checks_coordinates() -> None:
    assert location_answer(30, 114) == {"lat": 30.0, "lon": 114.0, "accuracy": None, "live": False}
    for lat, lon in ((91, 0), (0, -181), (-90.5, 0), (0, 1e300), (float("nan"), 0)):
        with pytest.raises(AnswerError, match="location_out_of_range"):
            location_answer(lat, lon)


# -- whole check-ins -------------------------------------------------------------------------


def test_abnormal_reasons_for_a_healthy_member(health: Form) -> None:
    assert abnormal_reasons(health, healthy_answers()) == []


def test_abnormal_reasons_for_an_unwell_member(health: Form) -> None:
    assert abnormal_reasons(health, unwell_answers()) == ["temperature", "symptoms", "exposure"]


def test_abnormal_reasons_one_at_a_time(health: Form) -> None:
    answers = healthy_answers()
    answers["temperature"] = 37.3
    assert abnormal_reasons(health, answers) == ["temperature"]
    answers = healthy_answers()
    answers["exposure"] = yesno_answer(True, "北京")
    assert abnormal_reasons(health, answers) == ["exposure"]
    assert abnormal_reasons(health, {"temperature": 37.2}) == []


def test_format_answers_in_chinese(health: Form) -> None:
    unwell = unwell_answers()
    shown = {q.id: format_answer(q, unwell[q.id], "zh") for q in health.questions}
    assert shown == {
        "location": "30.59280, 114.30550 (实时)",
        "temperature": "38.1 °C",
        "symptoms": "发热、咳嗽",
        "exposure": "是（3月2日 途经武汉）",
        "photo": "已附照片",
    }
    healthy = healthy_answers()
    shown = {q.id: format_answer(q, healthy[q.id], "zh") for q in health.questions}
    assert shown == {
        "location": "30.59280, 114.30550",
        "temperature": "36.6 °C",
        "symptoms": "以上都没有",
        "exposure": "否",
        "photo": "未填",
    }


def test_format_answers_in_english(health: Form) -> None:
    unwell = unwell_answers()
    unwell["exposure"] = yesno_answer(True, "Wuhan")
    shown = {q.id: format_answer(q, unwell[q.id], "en") for q in health.questions}
    assert shown == {
        "location": "30.59280, 114.30550 (live)",
        "temperature": "38.1 °C",
        "symptoms": "Fever, Cough",
        "exposure": "Yes (Wuhan)",
        "photo": "photo attached",
    }
    healthy = healthy_answers()
    shown = {q.id: format_answer(q, healthy[q.id], "en") for q in health.questions}
    assert shown["symptoms"] == "None of these"
    assert shown["exposure"] == "No"
    assert shown["photo"] == "skipped"


def test_format_answer_other_kinds() -> None:
    form = parse_form(base_form(), name="demo")
    assert format_answer(form.question("mood"), "bad", "zh") == "差"
    assert format_answer(form.question("mood"), "bad", "en") == "Bad"
    assert format_answer(form.question("note"), "头有点晕", "en") == "头有点晕"
    assert format_answer(form.question("temp"), 36, "en") == "36.0"  # no unit
    # An option dropped from a later version of the form still shows something.
    assert format_answer(form.question("mood"), "meh", "zh") == "meh"
