"""Managers change their scope (excuses, roster uploads), see where it checked in from; members
get everything stored about them."""

from __future__ import annotations

import json

from sqlmodel import col, select

from domain.delivery import TELEGRAM
from storage.models import AuditEntry, Excuse, Identity, Member, RoleGrant
from storage.repo import Repo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import ADMIN, CLASS_ONE, Daka


async def test_where_counts_places_of_the_scope(school: Daka, server: FakeBotAPI) -> None:
    where = await server.user(CLASS_ONE).ask("/where")
    assert "打卡地点分布" in where.text and "北京市: 1" in where.text


async def test_a_counselor_excuses_a_member_of_the_class_only(
    school: Daka,
    server: FakeBotAPI,
) -> None:
    counselor = server.user(CLASS_ONE)
    done = await counselor.ask("/excuse 2024002 2026-11-28 2026-11-29 病假")
    assert "李四" in done.text and "病假" in done.text
    outside = await counselor.ask("/excuse 2024003 2026-11-28 2026-11-29 病假")
    assert "没有" in outside.text
    usage = await counselor.ask("/excuse 2024002 2026-11-29 2026-11-28 反了")
    assert "用法" in usage.text
    summary = await counselor.ask("/summary")
    assert "请假 1" in summary.text and "未报 0" in summary.text
    await school.settled()
    async with school.sessions() as session:
        excuses = (await session.exec(select(Excuse))).all()
        audit = (await session.exec(select(AuditEntry).where(AuditEntry.action == "excuse"))).all()
    assert len(excuses) == 1 and len(audit) == 1


async def test_a_roster_upload_begun_before_the_role_was_revoked_ends_with_the_refusal(
    school: Daka, server: FakeBotAPI
) -> None:
    """The gate clears the managers' own conversation when it refuses: the file is refused
    once, and the next message is no longer taken for a roster."""
    counselor = server.user(CLASS_ONE)
    assert ".csv" in (await counselor.ask("/roster")).text
    async with school.sessions() as session:
        grants = await session.exec(
            select(RoleGrant)
            .join(Identity, col(Identity.account_id) == col(RoleGrant.account_id))
            .where(Identity.channel == TELEGRAM, Identity.external_id == str(CLASS_ONE))
        )
        for each in grants.all():
            each.revoked_at = school.clock.now()
            session.add(each)
        await session.commit()
    counselor.send_document(
        "roster.csv", "unit,member_id,name\n工程学院/一班,2024009,赵九\n".encode()
    )
    assert "仅供辅导员" in (await counselor.next_reply()).text
    assert "邀请链接" in (await counselor.ask("你好")).text
    async with school.sessions() as session:
        added = await session.exec(select(Member).where(col(Member.external_id) == "2024009"))
        assert added.first() is None


async def test_a_roster_upload_adds_updates_and_rejects_by_line(
    school: Daka,
    server: FakeBotAPI,
) -> None:
    counselor = server.user(CLASS_ONE)
    prompt = await counselor.ask("/roster")
    assert ".csv" in prompt.text
    content = (
        "unit,member_id,name\n"
        "工程学院/一班,2024009,赵九\n"
        "工程学院/一班,2024002,李肆\n"
        "工程学院/二班,2024010,钱十\n"
        "工程学院/一班,,无名\n"
    ).encode()
    counselor.send_document("roster.csv", content)
    result = await counselor.next_reply()
    assert "新增 1 人，更新 1 人，拒绝 2 行" in result.text
    assert "第 4 行" in result.text and "不在您的管理范围" in result.text
    assert "第 5 行" in result.text
    await school.settled()
    async with school.sessions() as session:
        names = {m.external_id: m.name for m in (await session.exec(select(Member))).all()}
    assert names["2024009"] == "赵九" and names["2024002"] == "李肆" and "2024010" not in names


async def test_mydata_sends_everything_stored_and_who_can_read_it(
    school: Daka,
    server: FakeBotAPI,
) -> None:
    zhang = server.user(801)
    zhang.drain()
    zhang.send("/mydata")
    document = await zhang.next_reply()
    assert document.file_name == "daka-mydata.json"
    data = json.loads(server.file_bytes(document.file_id or ""))
    [enrolment] = data["enrolments"]
    assert enrolment["member_id"] == "2024001" and enrolment["unit"] == "工程学院/一班"
    [checkin] = data["check_ins"]
    assert checkin["answers"]["temperature"] == 37.8 and checkin["abnormal"] is True
    assert data["consents"][0]["accepted"] is True
    readers = await zhang.next_reply()
    assert "工程学院/一班的负责人" in readers.text and "工程学院的负责人" in readers.text
    assert "第一中学的管理员" in readers.text
    assert "700" not in readers.text  # roles, not who


async def test_a_roster_upload_cannot_take_or_probe_members_of_other_units(
    school: Daka,
    server: FakeBotAPI,
) -> None:
    """Regression: a counselor's roster line with another class's member id moved that member
    into their class (whose history they could then read), and the reply told whether an id
    existed. Now such a line is refused with the text of a unit outside the scope."""
    counselor = server.user(CLASS_ONE)
    await counselor.ask("/roster")
    content = (
        "unit,member_id,name\n"
        "工程学院/一班,2024003,王五\n"  # class two's member
        "工程学院/一班,A100,Alice\n"  # another college's member
        "工程学院/二班,2024011,孙十一\n"  # a unit outside
        "工程学院/一班,2024012,周十二\n"  # new, inside: added
    ).encode()
    counselor.send_document("roster.csv", content)
    result = await counselor.next_reply()
    assert "新增 1 人，更新 0 人，拒绝 3 行" in result.text
    refusals = {
        line.split("：", 1)[1] for line in result.text.splitlines() if line.startswith("第 ")
    }
    assert refusals == {"不在您的管理范围内"}  # one text: nothing told about other units
    assert "二班" not in result.text and "Arts" not in result.text
    refused = await counselor.ask("/member 2024003")
    assert "王五" not in refused.text
    await school.settled()
    async with school.sessions() as session:
        repo = Repo(session)
        wang = await repo.members.by_external(
            org_id=school.org_ids["school"], external_id="2024003"
        )
        assert wang is not None
        unit = await repo.units.get(unit_id=wang.unit_id)
        assert (unit.name_path, wang.name) == ("工程学院/二班", "王五")
        assert await repo.members.by_external(
            org_id=school.org_ids["school"], external_id="2024012"
        )


async def test_an_administrator_uploads_for_the_whole_organisation(
    school: Daka,
    server: FakeBotAPI,
) -> None:
    admin = server.user(ADMIN)
    await admin.ask("/roster")
    admin.send_document("roster.csv", "unit,member_id,name\n工程学院/一班,2024003,王五\n".encode())
    result = await admin.next_reply()
    assert "新增 0 人，更新 1 人，拒绝 0 行" in result.text
