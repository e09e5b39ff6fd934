"""Template cards and the menu, sent through the client to the fake WeCom: a button card
answers a response_code, a press gives another, each code updates the card once within 72
hours; vote and multiple-choice cards and the menu pass WeCom's checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FixedClock
from domain.conversation.io import Box, Option
from domain.delivery import SENT, Refused
from handlers.wecom import render
from handlers.wecom.api import WeComAPI
from handlers.wecom.cards import (
    Button,
    Choice,
    Select,
    button_card,
    menu,
    menu_click,
    menu_group,
    menu_location,
    multiple_card,
    vote_card,
)
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.conftest import AGENT

FEVER = button_card(
    task_id="ci-2026-11-28-q2",
    title="今天体温正常吗？",
    desc="回复 1 正常 / 2 发热",
    buttons=[Button("正常", "ans:2:normal"), Button("发热", "ans:2:fever", style=2)],
)


async def test_a_button_card_is_answered_and_marked_answered_once(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    sent = await api.send_card(["zhangsan"], FEVER)
    (message,) = wecom.inbox("zhangsan")
    assert sent.sent and sent.response_code
    assert message.button_keys() == ["ans:2:normal", "ans:2:fever"]

    code = wecom.press(AGENT, "ci-2026-11-28-q2")  # the click callback's response_code
    marked = await api.update_card(["zhangsan"], code, replace_name="已选：正常")
    again = await api.update_card(["zhangsan"], code, replace_name="已选：发热")

    assert marked.outcome is SENT
    assert again.outcome == Refused(
        "WeCom errcode 40058: invalid parameter: response_code already used"
    )
    card = wecom.cards[(AGENT, "ci-2026-11-28-q2")]
    assert card.replaced_by == "已选：正常"
    assert len(card.updates) == 1


async def test_a_response_code_lasts_72_hours(
    api: WeComAPI, wecom: LocalWeCom, clock: FixedClock
) -> None:
    sent = await api.send_card(["zhangsan"], FEVER)
    clock.advance(timedelta(hours=72, seconds=1))

    late = await api.update_card(["zhangsan"], sent.response_code, replace_name="已过期")

    assert late.outcome == Refused("WeCom errcode 40058: invalid parameter: response_code expired")


async def test_a_card_can_be_replaced_whole_and_a_task_id_is_used_once(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    sent = await api.send_card(["zhangsan", "lisi"], FEVER)
    replacement = button_card(
        task_id="ci-2026-11-28-q2", title="体温：正常", buttons=[Button("修改", "amend:2")]
    )

    updated = await api.update_card(["zhangsan", "wangwu"], sent.response_code, card=replacement)
    reused = await api.send_card(["zhangsan"], FEVER)

    assert updated.sent and updated.invalid_users == frozenset({"wangwu"})
    assert wecom.cards[(AGENT, "ci-2026-11-28-q2")].body["main_title"]["title"] == "体温：正常"
    assert isinstance(reused.outcome, Refused) and "used before" in reused.outcome.detail
    with pytest.raises(ValueError, match="either"):
        await api.update_card(["zhangsan"], sent.response_code)


async def test_vote_and_multiple_choice_cards_pass_wecoms_checks(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    symptoms = vote_card(
        task_id="ci-q3",
        title="有哪些症状？",
        question_key="q3",
        options=[Choice("cough", "咳嗽"), Choice("fever", "发热"), Choice("none", "无", True)],
        submit=Button("提交", "submit:3"),
        multi=True,
    )
    where = multiple_card(
        task_id="ci-q4",
        title="今天在哪里？",
        selects=[Select("q4", "地点", [Choice("home", "家"), Choice("school", "学校")], "home")],
        submit=Button("提交", "submit:4"),
    )

    assert (await api.send_card(["lisi"], symptoms)).sent
    assert (await api.send_card(["lisi"], where)).sent
    vote, multiple = wecom.inbox("lisi")
    assert vote.body["checkbox"]["mode"] == 1
    assert vote.body["checkbox"]["option_list"][2] == {
        "id": "none",
        "text": "无",
        "is_checked": True,
    }
    assert multiple.body["select_list"][0]["selected_id"] == "home"


SYMPTOMS = [
    Option("⬜ 发热", "ans:d1:symptoms:fever", box=Box("发热", False)),
    Option("☑️ 味觉或嗅觉减退", "ans:d1:symptoms:taste", box=Box("味觉或嗅觉减退", True)),
    Option("完成 ✔", "ans:d1:symptoms:__done", submit=True),
]


async def test_a_choose_several_question_is_a_vote_card_that_wecom_takes(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    card = render.card("dk-q3", "(3/5) 有哪些症状？\n请选择所有符合的选项。", SYMPTOMS)

    assert card == {
        "card_type": "vote_interaction",
        "main_title": {"title": "(3/5) 有哪些症状？", "desc": "请选择所有符合的选项。"},
        "task_id": "dk-q3",
        "checkbox": {
            "question_key": "ans:d1:symptoms:__done",
            "option_list": [
                {"id": "ans:d1:symptoms:fever", "text": "发热"},  # its own text, no box drawn
                {"id": "ans:d1:symptoms:taste", "text": "味觉或嗅觉减退", "is_checked": True},
            ],
            "mode": 1,  # several
        },
        "submit_button": {"text": "完成 ✔", "key": "ans:d1:symptoms:__done"},
    }
    assert (await api.send_card(["zhangsan"], card)).sent
    assert wecom.cards[(AGENT, "dk-q3")].card_type == "vote_interaction"


def test_boxes_go_as_a_vote_card_up_to_twenty_and_numbered_beyond() -> None:
    def boxes(n: int) -> list[Option]:
        ticked = [Option(f"⬜ {i}", f"k{i}", box=Box(str(i), False)) for i in range(n)]
        return [*ticked, Option("完成", "done", submit=True)]

    assert render.fits_buttons(boxes(20)) and not render.fits_buttons(boxes(21))
    assert render.choosing(boxes(2)) is not None
    assert render.choosing(boxes(2)[:2]) is None  # no submit: buttons of their own
    assert render.choosing([*boxes(2), Option("⏭", "skip")]) is None  # something else beside
    assert render.choosing([Option("是", "y"), Option("否", "n")]) is None
    several = render.numbered(boxes(2))
    assert several.splitlines()[-1] != render.numbered(boxes(2)[:2]).splitlines()[-1]
    assert "1 3" in several  # how to tick several at once


@pytest.mark.parametrize(
    "make",
    [
        lambda: button_card(task_id="has space", title="t", buttons=[Button("a", "k")]),
        lambda: button_card(
            task_id="t", title="t", buttons=[Button(str(i), str(i)) for i in range(7)]
        ),
        lambda: button_card(task_id="t", title="t", buttons=[Button("a", "k"), Button("b", "k")]),
        lambda: button_card(task_id="t", title="t", buttons=[Button("a", "k" * 1025)]),
        lambda: button_card(task_id="t", title="", buttons=[Button("a", "k")]),
        lambda: button_card(task_id="t", title="t", buttons=[Button("a", "k", style=5)]),
        lambda: vote_card(
            task_id="t",
            title="t",
            question_key="q",
            options=[Choice(str(i), str(i)) for i in range(21)],
            submit=Button("s", "s"),
            multi=False,
        ),
        lambda: vote_card(
            task_id="t",
            title="t",
            question_key="q",
            options=[Choice("a", "a", True), Choice("b", "b", True)],
            submit=Button("s", "s"),
            multi=False,  # one to choose, two checked
        ),
        lambda: vote_card(
            task_id="t",
            title="t",
            question_key="q",
            options=[Choice("a" * 129, "a")],
            submit=Button("s", "s"),
            multi=True,
        ),
        lambda: multiple_card(task_id="t", title="t", selects=[], submit=Button("s", "s")),
        lambda: menu([menu_click(str(i), str(i)) for i in range(4)]),
        lambda: menu([menu_click("一个太长的菜单名字啊", "k")]),
        lambda: menu_group("g", [menu_click(str(i), str(i)) for i in range(6)]),
        lambda: menu_click("k", "k" * 129),
    ],
)
def test_what_wecom_would_refuse_is_a_bug_caught_before_sending(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


async def test_the_apps_menu_is_installed(api: WeComAPI, wecom: LocalWeCom) -> None:
    buttons = menu(
        [
            menu_location("打卡", "checkin"),
            menu_click("今日", "today"),
            menu_group("更多", [menu_click("历史", "history"), menu_click("帮助", "help")]),
        ]
    )

    assert await api.create_menu(buttons) is SENT
    assert wecom.apps[AGENT].menu == buttons
    assert await api.create_menu([{"type": "click", "name": "x"}]) == Refused(
        "WeCom errcode 40019: invalid button key size"
    )
