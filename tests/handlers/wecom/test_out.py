"""How the core's outputs look on WeCom, without HTTP: plain text, cards or numbered options,
what a member's number means afterwards, cards changed in place, files."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.conversation.io import Ask, MemoryState, Option, Press, Text
from domain.i18n import create_translator
from handlers.wecom import render
from handlers.wecom.out import SHOWN, Click, Shown, WeComOut
from handlers.wecom.turns import read_text

YES_NO = [[Option("是", key="ans:d:q:yes"), Option("否", key="ans:d:q:no")]]
EIGHT = [[Option(f"选项{n}", key=f"ans:d:q:{n}")] for n in range(1, 9)]


def zh() -> Any:
    i18n = create_translator()
    return i18n, i18n.use_locale("zh_Hans")


def test_light_markup_becomes_plain_text_and_what_people_typed_stays_inert() -> None:
    text = '<b>张三</b> &lt;a href="x"&gt;点我&lt;/a&gt; &amp; <a href="https://example.org/a">帮助</a>'
    assert (
        render.plain(text)
        == '张三 ＜a href="x">点我＜/a> & <a href="https://example.org/a">帮助</a>'
    )


def test_a_text_without_markup_reads_as_the_parser_would_read_it() -> None:
    """`plain` skips the parser for a text with neither "<" nor "&": the same text comes out."""
    texts = [
        "",
        "  打卡成功 ✔\n\n体温 36.6 °C  ",
        "line\r\nbreaks\ttabs >greater; quotes \"'",
        "\u00a0\u3000 spaces of every kind \u2003",
        "]]> -- ?> => ;#x41",
    ]
    for text in texts:
        parser = render._Plain()
        parser.feed(text)
        parser.close()
        assert render.plain(text) == "".join(parser.parts).strip()


def test_what_is_shown_is_kept_as_asdict_keeps_it_and_read_back() -> None:
    """`Shown.kept` is `dataclasses.asdict` without its deep copy: every field, in order."""
    shown = Shown(
        keys=["ans:d:q:1", "ans:d:q:done"],
        labels=["发热", "完成"],
        task="dk0123",
        body="您今天是否有以下症状？",
        digest="abcdef0123456789",
        location=True,
        numbered=True,
        submit="ans:d:q:done",
    )
    assert shown.kept() == dataclasses.asdict(shown)
    assert list(shown.kept()) == [f.name for f in dataclasses.fields(Shown)]
    assert shown.kept()["keys"] is not shown.keys  # a copy, as asdict's
    assert Shown.of({SHOWN: shown.kept()}) == shown


def test_a_few_short_options_are_numbered_on_one_line_more_one_a_line() -> None:
    i18n, locale = zh()
    with i18n.context(), locale:
        assert render.numbered(render.keyed(YES_NO)) == "回复 1 是 / 2 否"
        lines = render.numbered(render.keyed(EIGHT)).splitlines()
    assert lines[0] == "请回复数字：" and lines[1] == "1. 选项1" and lines[-1] == "8. 选项8"


async def test_options_go_as_a_card_and_a_number_typed_back_is_text() -> None:
    """A card's buttons are tapped; a number typed after it is an answer of its own (an
    optional number question's only button is "Skip": a typed 1 must not press it)."""
    out, state = WeComOut(text_only=False), MemoryState()
    await out.say("(4/5) 近14天内是否接触过？", YES_NO)
    [record] = out.records
    card = record["card"]
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == "(4/5) 近14天内是否接触过？"
    assert [b["key"] for b in card["button_list"]] == ["ans:d:q:yes", "ans:d:q:no"]
    await out.remember(state)
    shown = Shown.of(state.data)
    assert shown is not None and shown.task == card["task_id"]
    assert read_text(Text("1"), shown) == Text("1")


async def test_a_number_typed_after_numbered_lines_presses_one() -> None:
    out, state = WeComOut(text_only=True), MemoryState()
    await out.say("(4/5) 近14天内是否接触过？", YES_NO)
    await out.remember(state)
    shown = Shown.of(state.data)
    assert shown is not None and shown.numbered
    assert read_text(Text(" ２ "), shown) == Press("ans:d:q:no")  # full-width, as phones type
    assert read_text(Text("3"), shown) == Text("3")  # no third option: just text


async def test_text_only_and_long_lists_are_numbered_text() -> None:
    i18n, locale = zh()
    with i18n.context(), locale:
        text_only = WeComOut(text_only=True)
        await text_only.say("问题", YES_NO)
        many = WeComOut(text_only=False)
        await many.say("问题", EIGHT)
    assert text_only.records == [{"send": "text", "content": "问题\n\n回复 1 是 / 2 否"}]
    assert many.records[0]["send"] == "text" and "8. 选项8" in many.records[0]["content"]


async def test_a_message_without_options_forgets_the_numbers() -> None:
    out, state = WeComOut(text_only=True), MemoryState()
    await out.say("问题", YES_NO)
    await out.remember(state)
    assert SHOWN in state.data
    after = WeComOut(text_only=True, shown=Shown.of(state.data))
    await after.say("请发送您的学号")
    await after.remember(state)
    assert SHOWN not in state.data
    assert read_text(Text("1"), Shown.of(state.data)) == Text("1")


async def test_a_long_text_goes_before_its_card() -> None:
    out = WeComOut(text_only=False)
    long = "标题\n" + "很长的说明。" * 40
    await out.say(long, YES_NO)
    assert [r.get("send") for r in out.records] == ["text", "template_card"]
    assert out.records[1]["card"]["main_title"]["title"] == "标题"
    assert "sub_title_text" not in out.records[1]["card"]


async def test_a_clicked_card_becomes_the_next_question_or_keeps_its_text() -> None:
    first = WeComOut(text_only=False)
    await first.say("问题一", YES_NO)
    state = MemoryState()
    await first.remember(state)
    shown = Shown.of(state.data)
    assert shown is not None
    click = Click(shown.task, "ans:d:q:no", "code-1")

    nxt = WeComOut(text_only=False, shown=shown, click=click)
    await nxt.replace("✔ 问题一: 否\n\n问题二", YES_NO)
    [update] = nxt.records
    assert update["update"] == "code-1" and update["card"]["task_id"] == shown.task
    assert update["otherwise"][0]["card"]["task_id"] != shown.task  # a new card if refused

    same = WeComOut(text_only=False, shown=shown, click=click)
    await same.replace("问题一")  # answered: the text stays, its buttons go
    assert same.records == [{"update": "code-1", "replace_name": "✔ 否", "otherwise": []}]


async def test_a_location_question_says_how_to_send_one() -> None:
    i18n, locale = zh()
    out = WeComOut(text_only=False)
    with i18n.context(), locale:
        await out.say("请发送您当前所在的位置。", ask=Ask.LOCATION)
    assert "下方菜单“打卡”" in out.records[0]["content"] and out.asked_location
    assert out.showing is not None and out.showing.location


async def test_files_and_links() -> None:
    out = WeComOut(text_only=False)
    await out.file("chart.png", b"\x89PNG...", caption="<b>趋势</b>", image=True)
    await out.file_later("export", {"org": 1}, "a.xlsx", "太大了", caption="{rows} 行")
    await out.say("更多", [[Option("帮助", url="https://example.org/help")]])
    assert out.records[0]["file"] == "chart.png" and out.records[0]["caption"] == "趋势"
    assert out.records[1]["make"] == "export" and out.records[1]["failed"] == "太大了"
    assert out.records[2]["content"] == '更多\n<a href="https://example.org/help">帮助</a>'


async def test_a_card_after_its_text_does_not_repeat_it() -> None:
    out = WeComOut(text_only=False)
    body = (
        "📊 工程学院 — 2026-11-28 各单位打卡情况\n"
        + "• 一班：应报 30，已报 28（93%），未报 2\n" * 5
    )  # 162 > 160; its rest 134
    await out.say(body, YES_NO)
    text, card = out.records
    assert text["content"] == body.strip() and "sub_title_text" not in card["card"]
