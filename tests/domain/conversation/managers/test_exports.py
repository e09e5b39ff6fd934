"""Files of a manager's scope in the core: /export asks for a file made after the commit (its
maker, arguments and texts) and is audited; /trend sends a PNG chart as a picture."""

from __future__ import annotations

from sqlmodel import select

from storage.makers import MAKERS
from storage.models import AuditEntry
from tests.domain.conversation.managers.managers_world import ADMIN, CLASS_ONE, ISO, UNITS, World

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def audit(world: World, action: str) -> list[tuple[str, str | None, str | None]]:
    async with world.sessions() as session:
        entries = (await session.exec(select(AuditEntry).where(AuditEntry.action == action))).all()
    return [(a.actor, a.subject, a.detail) for a in entries]


async def test_an_export_is_asked_for_the_scope_and_audited(world: World) -> None:
    class_one = await world.unit_id("工程学院/一班")
    [later] = (await world.command(CLASS_ONE, "/export")).said
    assert later.how == "file_later" and later.maker == "export" and later.maker in MAKERS
    assert later.name == f"daka-{ISO}-{ISO}.xlsx"
    assert later.args == {
        "org": world.org_ids["school"],
        "first": ISO,
        "last": ISO,
        "under": [class_one],
        "format": "xlsx",
    }
    assert later.text == f"共 {{rows}} 行，{ISO} 至 {ISO}"  # {rows}: filled in once made
    assert later.failed is not None and "/export csv" in later.failed
    [as_csv] = (await world.command(ADMIN, "/export CSV 2026-11-01 2026-11-28")).said
    assert as_csv.name == "daka-2026-11-01-2026-11-28.csv"
    assert as_csv.args is not None and as_csv.args["under"] is None  # the whole organisation
    assert await audit(world, "export") == [
        (f"telegram:{CLASS_ONE}", str(class_one), f"{ISO}..{ISO} xlsx"),
        (f"telegram:{ADMIN}", "0", f"2026-11-01..{ISO} csv"),
    ]


async def test_an_export_of_several_units_reads_each_of_them(world: World) -> None:
    await world.grant(UNITS, "工程学院/一班")
    await world.grant(UNITS, "Arts/Class A")
    ids = sorted([await world.unit_id("工程学院/一班"), await world.unit_id("Arts/Class A")])
    [later] = (await world.command(UNITS, "/export csv")).said
    assert later.args is not None and sorted(later.args["under"]) == ids
    [(_, subject, _)] = await audit(world, "export")
    assert sorted(int(i) for i in (subject or "").split(",")) == ids


async def test_bad_export_days_get_the_usage_or_the_limit(world: World) -> None:
    for args in ("9999-12-30 9999-12-31", "x", "2026-11-01 2026-11-02 2026-11-03"):
        [usage] = (await world.command(CLASS_ONE, f"/export {args}")).said
        assert usage.how == "say" and "/export" in usage.text, args
    [limit] = (await world.command(CLASS_ONE, "/export 2026-11-28 2025-01-01")).texts()
    assert "366" in limit
    assert await audit(world, "export") == []


async def test_a_trend_is_a_picture_of_the_scope_and_audited(world: World) -> None:
    class_one = await world.unit_id("工程学院/一班")
    [chart] = (await world.command(CLASS_ONE, "/trend 7")).said
    assert chart.how == "file" and chart.image and chart.name == "trend.png"
    assert chart.data is not None and chart.data.startswith(PNG_SIGNATURE)
    assert chart.text == "📈 工程学院/一班，2026-11-22 至 2026-11-28\n灰色：当天无需打卡。"
    assert await audit(world, "trend") == [
        (f"telegram:{CLASS_ONE}", str(class_one), "2026-11-22..2026-11-28")
    ]


async def test_trend_days_outside_one_to_ninety_get_an_example(world: World) -> None:
    for args in ("0", "abc", "91", "-3", "7 days", "٣"):
        [answer] = (await world.command(CLASS_ONE, f"/trend {args}")).said
        assert answer.how == "say" and "/trend 30" in answer.text and "90" in answer.text
    assert await audit(world, "trend") == []
