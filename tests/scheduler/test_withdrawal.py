"""A member who withdrew consent gets no reminder (a round decides without them, and a letter
written before the withdrawal is not sent), the cutoff list does not chase them, the daily report
counts them apart, and their answers are erased once the grace period is over."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from scheduler.jobs import erase_withdrawn_now
from storage.models import CheckIn, Outbox
from storage.repo import Repo
from tests.scheduler.conftest import School
from tests.scheduler.test_reminders import check_in, enrol_all, reminders

MANAGER = 90


async def withdraw(school: School, external_id: str) -> None:
    async with school.daka.sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.get(org_id=school.daka.org_ids["school"])
        member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
        assert member is not None
        await repo.privacy.withdraw(member=member, org=org, actor="x", now=school.clock.now())
        await session.commit()


async def test_who_withdrew_is_neither_reminded_nor_chased_nor_expected(school: School) -> None:
    await enrol_all(school)
    await school.grant(MANAGER, "工程学院/一班")
    await school.at("07:00")
    await check_in(school, school.server.user(12), temperature="38.2")  # 李四, abnormal
    await withdraw(school, "1001")  # 张三
    [result] = await school.at("08:00")
    assert result.enqueued == 3  # 王五, 赵六, 周八: not 张三
    await school.send()
    assert reminders(school, 11) == [] and len(reminders(school, 13)) == 1

    # A letter decided before the withdrawal is not sent.
    sent = school.sender.stats.sent  # running totals
    [ten] = await school.at("10:00")
    assert ten.enqueued == 3
    await withdraw(school, "1003")  # 王五, with the 10:00 reminder waiting
    stats = await school.send()
    assert stats.sent - sent == 2 and len(reminders(school, 13)) == 1
    async with school.daka.sessions() as session:
        letters = (await session.exec(select(Outbox).where(Outbox.slot == "remind@10:00"))).all()
    assert sorted((x.status, x.error or "") for x in letters) == [
        ("sent", ""),
        ("sent", ""),
        ("skipped", "withdrew consent"),
    ]

    await school.at("14:00")  # the cutoff list
    await school.at("15:00")  # the report
    await school.send()
    texts = [m.text for m in school.server.messages(MANAGER)]
    cutoff = next(t for t in texts if "截止" in t)
    assert "张三" not in cutoff and "王五" not in cutoff
    report = next(t for t in texts if "日报" in t)
    assert "应报 1，已报 1" in report and "已撤回同意 2" in report


async def test_the_answers_go_once_the_grace_period_is_over(school: School) -> None:
    await enrol_all(school)
    await school.at("07:00")
    await check_in(school, school.server.user(11), temperature="38.2")
    await withdraw(school, "1001")
    school.clock.advance(timedelta(days=6))
    assert await erase_withdrawn_now(school.daka.sessions, school.clock) == []
    school.clock.advance(timedelta(days=1))
    assert await erase_withdrawn_now(school.daka.sessions, school.clock) == [("school", "1001")]
    async with school.daka.sessions() as session:
        [row] = (await session.exec(select(CheckIn))).all()
    assert row.answers == {} and row.abnormal
