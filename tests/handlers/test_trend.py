"""/trend: managers get a PNG chart of their scope, members the same refusal as /summary, and
a number of days outside 1–90 an example; every chart sent is audited."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import select

from storage.models import AuditEntry
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import ADMIN, CLASS_ONE, Daka, grant

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image.size


async def trend_audit(daka: Daka) -> list[tuple[str, str | None, str | None]]:
    await daka.settled()
    async with daka.sessions() as session:
        entries = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "trend"))
        ).all()
    return [(a.actor, a.subject, a.detail) for a in entries]


async def test_a_counselor_gets_a_chart_of_the_class(school: Daka, server: FakeBotAPI) -> None:
    counselor = server.user(CLASS_ONE)
    chart = await counselor.ask("/trend", timeout=60)  # the first chart loads matplotlib
    assert chart.photo, chart.text
    width, height = png_size(server.file_bytes(chart.file_id or ""))
    assert width > height > 300
    assert "工程学院/一班" in chart.text
    assert "2026-11-15" in chart.text and "2026-11-28" in chart.text  # 14 days by default
    class_one = await school.unit_id("工程学院/一班")
    assert await trend_audit(school) == [
        (f"telegram:{CLASS_ONE}", str(class_one), "2026-11-15..2026-11-28")
    ]


async def test_an_administrator_charts_the_whole_school(school: Daka, server: FakeBotAPI) -> None:
    admin = server.user(ADMIN)
    chart = await admin.ask("/trend 90", timeout=60)
    assert chart.photo, chart.text
    png_size(server.file_bytes(chart.file_id or ""))
    assert "第一中学" in chart.text and "2026-08-31" in chart.text
    week = await admin.ask("/trend  7 ")
    assert week.photo and "2026-11-22" in week.text
    assert await trend_audit(school) == [
        (f"telegram:{ADMIN}", "0", "2026-08-31..2026-11-28"),
        (f"telegram:{ADMIN}", "0", "2026-11-22..2026-11-28"),
    ]


async def test_members_are_refused(school: Daka, server: FakeBotAPI) -> None:
    member = server.user(802)
    refused = await member.ask("/trend")
    assert "仅供" in refused.text and not refused.photo
    assert await trend_audit(school) == []


async def test_days_outside_one_to_ninety_get_an_example(school: Daka, server: FakeBotAPI) -> None:
    counselor = server.user(CLASS_ONE)
    for args in ("0", "abc", "91", "-3", "7 days", "٣"):
        answer = await counselor.ask(f"/trend {args}")
        assert "/trend 30" in answer.text and "90" in answer.text, args
        assert not answer.photo
    assert await trend_audit(school) == []


async def test_a_manager_of_several_units_charts_all_of_them(
    school: Daka, server: FakeBotAPI
) -> None:
    """Regression: the chart was of the first grant's unit only."""
    await grant(school, 730, "工程学院/一班", "Arts/Class A")
    chart = await server.user(730).ask("/trend 7", timeout=60)  # the first chart finds fonts
    assert chart.photo, chart.text
    assert "Arts/Class A; 工程学院/一班" in chart.text and "2026-11-22" in chart.text
    ids = sorted([await school.unit_id("工程学院/一班"), await school.unit_id("Arts/Class A")])
    [(actor, subject, _)] = await trend_audit(school)
    assert actor == "telegram:730" and sorted(int(i) for i in (subject or "").split(",")) == ids
