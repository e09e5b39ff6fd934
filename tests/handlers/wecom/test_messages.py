"""Decrypted callbacks, as WeCom's documents show them (Doc 90239 消息格式, Doc 90240 事件格式),
read into typed events, deduplicated, and turned into the core's neutral inputs."""

from __future__ import annotations

import pytest

from domain.conversation import io
from handlers.wecom.crypto import BadPayload
from handlers.wecom.messages import (
    BadMessage,
    CardPressed,
    EnterAgent,
    ImageMessage,
    LocationMessage,
    LocationPicked,
    LocationReport,
    MenuClick,
    Selected,
    TextMessage,
    Unsupported,
    dedupe_key,
    parse,
    person_of,
    to_input,
)


def head(msg_type: str, user: str = "ZhangSan", created: int = 1348831860) -> str:
    return (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName>"
        f"<FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
    )


TEXT = head("text") + (
    "<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>"
    "<AgentID>1</AgentID></xml>"
)
IMAGE = head("image") + (
    "<PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId>"
    "<MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>"
)
LOCATION = head("location", created=1351776360) + (
    "<Location_X>23.134</Location_X><Location_Y>113.358</Location_Y><Scale>20</Scale>"
    "<Label><![CDATA[位置信息]]></Label><MsgId>1234567890123456</MsgId><AgentID>1</AgentID>"
    "<AppType><![CDATA[wxwork]]></AppType></xml>"
)
REPORT = head("event", user="FromUser", created=123456789) + (
    "<Event><![CDATA[LOCATION]]></Event><Latitude>23.104</Latitude>"
    "<Longitude>113.320</Longitude><Precision>65.000</Precision><AgentID>1</AgentID>"
    "<AppType><![CDATA[wxwork]]></AppType></xml>"
)
PICKED = head("event", user="FromUser", created=1408091189) + (
    "<Event><![CDATA[location_select]]></Event><EventKey><![CDATA[6]]></EventKey>"
    "<SendLocationInfo><Location_X><![CDATA[23]]></Location_X>"
    "<Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale>"
    "<Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname>"
    "</SendLocationInfo><AgentID>1</AgentID><AppType><![CDATA[wxwork]]></AppType></xml>"
)
CLICK = head("event", user="FromUser", created=123456789) + (
    "<Event><![CDATA[click]]></Event><EventKey><![CDATA[today]]></EventKey>"
    "<AgentID>1</AgentID></xml>"
)
ENTER = head("event", user="FromUser", created=1408091189) + (
    "<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>"
    "<AgentID>1</AgentID></xml>"
)
CARD = head("event", user="FromUser", created=123456789) + (  # Doc 90240's own sample
    "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey>"
    "<TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[text_notice]]></CardType>"
    "<ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID>"
    "<SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>"
    "<OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]>"
    "</OptionId></OptionIds></SelectedItem><SelectedItem><QuestionKey><![CDATA[QuestionKey2]]>"
    "</QuestionKey><OptionIds><OptionId><![CDATA[OptionId3]]></OptionId><OptionId>"
    "<![CDATA[OptionId4]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>"
)


def test_a_text_message_is_text_and_a_slash_is_a_command() -> None:
    event = parse(TEXT)

    assert event == TextMessage("ZhangSan", 1, 1348831860, "this is a test", "1234567890123456")
    assert to_input(event) == io.Text("this is a test")
    assert person_of(event) == io.Person("wecom", "zhangsan")
    command = parse(TEXT.replace("this is a test", " /checkin  2024001 "))
    assert to_input(command) == io.Command("checkin", "2024001")


def test_an_image_is_a_photo_by_its_media_id_never_known_to_be_forwarded() -> None:
    event = parse(IMAGE)

    assert isinstance(event, ImageMessage)
    assert (event.pic_url, event.media_id) == ("this is a url", "media_id")
    assert to_input(event) == io.Photo(ref="media_id", forwarded=False)


def test_a_location_message_carries_its_label_and_no_accuracy() -> None:
    event = parse(LOCATION)

    assert event == LocationMessage(
        "ZhangSan", 1, 1351776360, 23.134, 113.358, 20, "位置信息", "1234567890123456"
    )
    assert to_input(event) == io.Location(23.134, 113.358, forwarded=False, label="位置信息")


def test_the_location_event_is_the_devices_own_report_with_its_precision() -> None:
    event = parse(REPORT)

    assert event == LocationReport("FromUser", 1, 123456789, 23.104, 113.320, 65.0)
    assert to_input(event) == io.Location(23.104, 113.32, accuracy=65.0, live=True)


def test_a_location_picked_from_the_menu_carries_its_trimmed_label() -> None:
    event = parse(PICKED)

    assert event == LocationPicked(
        "FromUser", 1, 1408091189, "6", 23.0, 113.0, 15, "广州市海珠区客村艺苑路 106号", ""
    )
    assert to_input(event) == io.Location(23.0, 113.0, label="广州市海珠区客村艺苑路 106号")


def test_a_menu_click_is_the_command_its_key_names() -> None:
    event = parse(CLICK)

    assert event == MenuClick("FromUser", 1, 123456789, "today")
    assert to_input(event) == io.Command("today")
    assert to_input(parse(CLICK.replace("today", "/member 2024001"))) == io.Command(
        "member", "2024001"
    )
    assert to_input(parse(CLICK.replace("today", ""))) is None


def test_entering_the_app_asks_nothing_of_the_core() -> None:
    event = parse(ENTER)

    assert event == EnterAgent("FromUser", 1, 1408091189)
    assert to_input(event) is None


def test_a_card_event_is_a_press_of_its_key_with_the_choices_kept() -> None:
    event = parse(CARD)

    assert isinstance(event, CardPressed)
    assert (event.event_key, event.task_id, event.card_type, event.response_code) == (
        "key111",
        "taskid111",
        "text_notice",
        "ResponseCode",
    )
    assert event.selected == (
        Selected("QuestionKey1", ("OptionId1", "OptionId2")),
        Selected("QuestionKey2", ("OptionId3", "OptionId4")),
    )
    assert to_input(event) == io.Press("key111")


def test_a_vote_or_multiple_choice_submit_is_a_press_with_the_options_ticked() -> None:
    vote = parse(CARD.replace("text_notice", "vote_interaction").replace("OptionId4", "OptionId1"))
    multiple = parse(CARD.replace("text_notice", "multiple_interaction"))
    nothing = parse(
        CARD.replace("text_notice", "vote_interaction").split("<SelectedItems>")[0] + "</xml>"
    )

    # Every question's ids, in order, once each: the core checks each one.
    assert to_input(vote) == io.Press("key111", chosen=("OptionId1", "OptionId2", "OptionId3"))
    assert to_input(multiple) == io.Press(
        "key111", chosen=("OptionId1", "OptionId2", "OptionId3", "OptionId4")
    )
    assert to_input(nothing) == io.Press("key111", chosen=())  # submitted with none ticked
    assert to_input(parse(CARD.replace("text_notice", "button_interaction"))) == io.Press("key111")


def test_two_submits_of_a_card_differ_by_what_was_ticked_and_a_retry_does_not() -> None:
    vote = CARD.replace("text_notice", "vote_interaction")
    other = vote.replace("OptionId4", "OptionId5")

    assert dedupe_key(parse(vote)) == dedupe_key(parse(vote))
    assert dedupe_key(parse(vote)) != dedupe_key(parse(other))


def test_types_daka_does_not_read_are_unsupported_not_errors() -> None:
    voice = parse(
        head("voice") + "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>"
        "<MsgId>99</MsgId><AgentID>1</AgentID></xml>"
    )
    subscribe = parse(head("event") + "<Event><![CDATA[subscribe]]></Event></xml>")

    assert voice == Unsupported("ZhangSan", 1, 1348831860, "voice", "", "99")
    assert to_input(voice) == io.Text("")  # the question asks again for what it needs
    assert subscribe == Unsupported("ZhangSan", None, 1348831860, "event", "subscribe", "")
    assert to_input(subscribe) is None


def test_retries_share_a_dedupe_key_and_different_callbacks_do_not() -> None:
    assert dedupe_key(parse(TEXT)) == dedupe_key(parse(TEXT)) == "msg:1234567890123456"
    assert dedupe_key(parse(TEXT)) != dedupe_key(parse(TEXT.replace("1234567890123456", "7")))
    keys = {dedupe_key(parse(xml)) for xml in (REPORT, PICKED, CLICK, ENTER, CARD)}
    assert len(keys) == 5
    assert dedupe_key(parse(CLICK)) == dedupe_key(parse(CLICK))
    later = CLICK.replace("123456789", "123456790")
    other_key = CLICK.replace("today", "history")
    assert len({dedupe_key(parse(x)) for x in (CLICK, later, other_key)}) == 3


@pytest.mark.parametrize(
    "xml",
    [
        TEXT.replace("<FromUserName><![CDATA[ZhangSan]]></FromUserName>", ""),
        TEXT.replace("<CreateTime>1348831860</CreateTime>", "<CreateTime>soon</CreateTime>"),
        TEXT.replace("<MsgId>1234567890123456</MsgId>", ""),
        TEXT.replace("<AgentID>1</AgentID>", "<AgentID>one</AgentID>"),
        IMAGE.replace("<MediaId><![CDATA[media_id]]></MediaId>", ""),
        LOCATION.replace("23.134", "north"),
        LOCATION.replace("23.134", "nan"),
        REPORT.replace("<Longitude>113.320</Longitude>", ""),
        PICKED.replace("<SendLocationInfo>", "<Other>").replace("</SendLocationInfo>", "</Other>"),
    ],
)
def test_a_callback_missing_what_wecom_always_sends_is_a_bad_message(xml: str) -> None:
    with pytest.raises(BadMessage):
        parse(xml)


def test_xml_that_is_not_xml_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload):
        parse("<xml>unclosed")


def test_a_location_off_the_earth_reaches_the_core_which_answers_it() -> None:
    event = parse(LOCATION.replace("23.134", "123.4"))

    assert isinstance(event, LocationMessage) and event.latitude == 123.4
