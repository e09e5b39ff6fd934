"""Repositories against real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from domain.clock import FixedClock
from storage.db import SessionFactory
from storage.models import Account, InboundEvent, Member, Organisation, OrgChannel, RoleGrant
from storage.repo import Conflict, Repo, RosterRow, Submission
from tests.storage.seeding import enrol, grant_role


async def make_org(sessions: SessionFactory, clock: FixedClock, slug: str = "school") -> int:
    async with sessions() as session:
        org = await Repo(session).orgs.create(
            slug=slug,
            name="No. 1 School",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=clock.now(),
        )
        await session.commit()
        assert org.id is not None
        return org.id


async def test_units_get_materialised_paths_and_parents_on_the_way(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await make_org(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        leaf = await repo.units.ensure(org_id=org_id, name_path=" Engineering / Class 1 ")
        again = await repo.units.ensure(org_id=org_id, name_path="Engineering/Class 1")
        sibling = await repo.units.ensure(org_id=org_id, name_path="Engineering/Class 2")
        await session.commit()
        parent = await repo.units.require(org_id=org_id, name_path="Engineering")
    assert leaf.id == again.id
    assert leaf.name_path == "Engineering/Class 1"
    assert leaf.depth == 1 and parent.depth == 0
    assert leaf.path == f"/{parent.id}/{leaf.id}/"
    assert sibling.path.startswith(parent.path) and sibling.path != leaf.path


async def test_duplicate_slug_is_a_conflict(sessions: SessionFactory, clock: FixedClock) -> None:
    await make_org(sessions, clock)
    with pytest.raises(Conflict):
        await make_org(sessions, clock)


async def test_roster_import_updates_known_ids_instead_of_duplicating(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await make_org(sessions, clock)
    first = [
        RosterRow(line=2, unit="Eng/C1", member_id="001", name="张三"),
        RosterRow(line=3, unit="Eng/C1", member_id="002", name="李四"),
    ]
    second = [
        RosterRow(line=2, unit="Eng/C2", member_id="001", name="张三"),
        RosterRow(line=3, unit="Eng/C1", member_id="002", name="李四"),
        RosterRow(line=4, unit="Eng/C1", member_id="003", name="王五"),
    ]
    async with sessions() as session:
        repo = Repo(session)
        r1 = await repo.members.import_roster(org_id=org_id, rows=first)
        r2 = await repo.members.import_roster(org_id=org_id, rows=second)
        await session.commit()
        listing = await repo.members.listing(org_id=org_id)
        c1 = await repo.units.require(org_id=org_id, name_path="Eng/C1")
        in_c1 = await repo.members.listing(org_id=org_id, under=c1)
    assert (r1.added, r1.updated, r1.unchanged) == (2, 0, 0)
    assert (r2.added, r2.updated, r2.unchanged) == (1, 1, 1)
    assert [(r.unit_path, r.member.external_id) for r in listing] == [
        ("Eng/C1", "002"),
        ("Eng/C1", "003"),
        ("Eng/C2", "001"),
    ]
    assert {r.member.external_id for r in in_c1} == {"002", "003"}


async def test_a_second_checkin_the_same_day_amends_and_keeps_every_version(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await make_org(sessions, clock)
    day = date(2026, 11, 28)
    async with sessions() as session:
        repo = Repo(session)
        await repo.members.import_roster(
            org_id=org_id, rows=[RosterRow(line=2, unit="C1", member_id="1", name="A")]
        )
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None
        first, amended1 = await repo.checkins.submit(
            member=member,
            local_day=day,
            form="health",
            form_version=1,
            submission=Submission(answers={"temperature": 36.5}, abnormal=False, reasons=[]),
            update_id=10,
            now=clock.now(),
        )
        clock.advance(timedelta(hours=1))
        second, amended2 = await repo.checkins.submit(
            member=member,
            local_day=day,
            form="health",
            form_version=1,
            submission=Submission(
                answers={"temperature": 37.9},
                abnormal=True,
                reasons=["temperature"],
                latitude=39.9,
                longitude=116.4,
                province="北京市",
                city="北京市",
            ),
            update_id=11,
            now=clock.now(),
        )
        await session.commit()
        assert member.id is not None
        current = await repo.checkins.for_day(member_id=member.id, local_day=day)
        revisions = await repo.checkins.revisions(member_id=member.id, local_day=day)
        history = await repo.checkins.history(
            member_id=member.id, since=day - timedelta(days=13), until=day
        )
    assert (amended1, amended2) == (False, True)
    assert first.id == second.id
    assert current is not None and current.version == 2 and current.abnormal
    assert current.answers == {"temperature": 37.9} and current.province == "北京市"
    assert current.submitted_at == clock.now()
    assert [(r.version, r.answers["temperature"]) for r in revisions] == [(1, 36.5), (2, 37.9)]
    assert [c.local_day for c in history] == [day]


async def test_a_checkin_the_transaction_holds_is_brought_up_to_date_by_an_amendment(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """`submit` writes as Core: a check-in the session loaded before (a member's earlier turn
    in the same batch) is not left at its old version."""
    org_id = await make_org(sessions, clock)
    day = date(2026, 11, 28)
    async with sessions() as session:
        repo = Repo(session)
        await repo.members.import_roster(
            org_id=org_id, rows=[RosterRow(line=2, unit="C1", member_id="1", name="A")]
        )
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None and member.id is not None
        await repo.checkins.submit(
            member=member,
            local_day=day,
            form="health",
            form_version=1,
            submission=Submission(answers={"temperature": 36.5}, abnormal=False, reasons=[]),
            update_id=20,
            now=clock.now(),
            channel="wecom",
        )
        held = await repo.checkins.for_day(member_id=member.id, local_day=day)
        assert held is not None and held.version == 1 and held.retention_applied == 0
        assert held.org_id == org_id and held.channel == "wecom" and not held.live
        clock.advance(timedelta(minutes=5))
        second, amended = await repo.checkins.submit(
            member=member,
            local_day=day,
            form="health",
            form_version=2,
            submission=Submission(
                answers={"temperature": 38.0}, abnormal=True, reasons=["temperature"], live=True
            ),
            update_id=21,
            now=clock.now(),
            channel="telegram",
        )
        assert amended and second is held
        assert (held.version, held.answers, held.reasons) == (
            2,
            {"temperature": 38.0},
            ["temperature"],
        )
        assert (held.form_version, held.channel, held.live) == (2, "telegram", True)
        assert held.submitted_at == clock.now()
        with pytest.raises(IntegrityError):  # an update handled before: nothing written twice
            await repo.checkins.submit(
                member=member,
                local_day=day,
                form="health",
                form_version=2,
                submission=Submission(answers={}, abnormal=False, reasons=[]),
                update_id=21,
                now=clock.now(),
            )


async def test_what_a_turn_reads_of_its_visitor_is_what_is_stored(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """The organisations, roles and app settings a batch of turns reads as rows (not the
    session's objects) hold every column as the ORM loads it; the accounts and enrolments,
    which turns change, stay the session's objects."""
    org_id = await make_org(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.get(org_id=org_id)
        org.geofence_lat, org.geofence_lon, org.geofence_radius_m = 31.2, 121.4, 500.0
        await repo.members.import_roster(
            org_id=org_id, rows=[RosterRow(line=2, unit="C1", member_id="1", name="A")]
        )
        await enrol(repo, org_id=org_id, telegram_id=501, member_id="1", now=clock.now())
        await grant_role(repo, org_id=org_id, telegram_id=501, unit="C1", now=clock.now())
        await repo.channels.configure(
            org_id=org_id, channel="wecom", app_id="1000002", text_only=True
        )
        await session.commit()
    async with sessions() as session:
        repo = Repo(session)
        served = await repo.channels.serving(channel="wecom", app_id="1000002")
        accounts = await repo.accounts.by_identities(channel="telegram", external_ids=["501"])
        account = accounts["501"]
        assert account.id is not None
        ((member, member_org),) = await repo.members.enrolments(account_ids=[account.id])
        ((grant, grant_org),) = await repo.roles.active_many(account_ids=[account.id])
        assert account in session and member in session
        assert served is not None
        read = [served.org, served.setting, member_org, grant, grant_org]
        assert not any(obj in session for obj in read)
    async with sessions() as session:
        stored = [
            await session.get(Organisation, org_id),
            (await session.exec(select(OrgChannel))).one(),
            await session.get(Organisation, org_id),
            (await session.exec(select(RoleGrant))).one(),
            await session.get(Organisation, org_id),
            await session.get(Account, account.id),
            await session.get(Member, member.id),
        ]
    assert [obj.model_dump() for obj in [*read, account, member]] == [
        obj.model_dump() for obj in stored if obj is not None
    ]
    assert served.setting.text_only and served.org.geofence_radius_m == 500.0
    assert served.org.created_at.tzinfo is not None and grant.granted_at == clock.now()


async def test_a_batch_reads_its_visitors_accounts_and_enrolments_in_one_query(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """`with_enrolments` gives what `by_identities` and `enrolments` give: each account
    with its active roster entries in the order they were made (in two organisations here;
    an entry taken off the roster left out), an account with none, nobody unknown."""
    first = await make_org(sessions, clock)
    second = await make_org(sessions, clock, slug="other")
    rows = [RosterRow(line=2, unit="C1", member_id=m, name=m) for m in ("1", "2", "3")]
    async with sessions() as session:
        repo = Repo(session)
        for org_id in (second, first):
            await repo.members.import_roster(org_id=org_id, rows=rows)
        await enrol(repo, org_id=second, telegram_id=601, member_id="1", now=clock.now())
        await enrol(repo, org_id=first, telegram_id=601, member_id="2", now=clock.now())
        gone = await enrol(repo, org_id=first, telegram_id=602, member_id="3", now=clock.now())
        gone.active = False
        await repo.accounts.ensure(channel="telegram", external_id="603", now=clock.now())
        await session.commit()
    ids = ["603", "601", "602", "604"]
    async with sessions() as session:
        repo = Repo(session)
        found = await repo.accounts.with_enrolments(channel="telegram", external_ids=ids)
        together = {
            eid: (account.id, [(m.id, m.org_id, o.id, o.slug) for m, o in enrolled])
            for eid, (account, enrolled) in found.items()
        }
        assert all(account in session for account, _ in found.values())
        assert all(m in session for _, enrolled in found.values() for m, _ in enrolled)
    async with sessions() as session:
        repo = Repo(session)
        accounts = await repo.accounts.by_identities(channel="telegram", external_ids=ids)
        apart = {}
        for eid, account in accounts.items():
            assert account.id is not None
            enrolled = await repo.members.enrolments(account_ids=[account.id])
            apart[eid] = (account.id, [(m.id, m.org_id, o.id, o.slug) for m, o in enrolled])
    assert together == apart
    assert list(together) == sorted(together, key=lambda eid: together[eid][0] or 0)
    assert [slug for *_, slug in together["601"][1]] == ["other", "school"]
    assert together["602"][1] == [] and together["603"][1] == [] and "604" not in together


async def test_one_checkin_row_per_member_and_day_is_enforced_by_the_schema(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    from storage.models import CheckIn

    org_id = await make_org(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        await repo.members.import_roster(
            org_id=org_id, rows=[RosterRow(line=2, unit="C1", member_id="1", name="A")]
        )
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None and member.id is not None
        for _ in range(2):
            session.add(
                CheckIn(
                    org_id=org_id,
                    unit_id=member.unit_id,
                    member_id=member.id,
                    local_day=date(2026, 11, 28),
                    submitted_at=clock.now(),
                    form="health",
                )
            )
        with pytest.raises(IntegrityError):
            await session.flush()


async def test_invite_uses_stop_at_the_limit(sessions: SessionFactory, clock: FixedClock) -> None:
    org_id = await make_org(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        invite = await repo.invites.create(
            org_id=org_id,
            unit_id=None,
            role="member",
            expires_at=clock.now() + timedelta(days=1),
            max_uses=2,
            now=clock.now(),
        )
        results = [await repo.invites.use(code=invite.code) for _ in range(3)]
        await session.commit()
        await session.refresh(invite)
    assert results == [True, True, False]
    assert invite.uses == 2
    assert len(invite.code) >= 16  # 12 random bytes: 96 bits


async def test_journal_records_each_update_once_and_tracks_the_offset(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    async with sessions() as session:
        journal = Repo(session).journal
        assert await journal.next_offset() is None
        await journal.record_handled(
            rows=[(5, None), (6, '[{"method": "sendMessage"}]')], now=clock.now()
        )
        await journal.record_handled(
            rows=[(6, '[{"method": "sendMessage"}]'), (7, None)], now=clock.now()
        )
        await session.commit()
        assert await journal.handled_among(update_ids=[4, 5, 6, 7, 8]) == {5, 6, 7}
        assert await journal.next_offset() == 8
        assert await journal.unreplied() == [(6, '[{"method": "sendMessage"}]')]
        await journal.mark_replied(update_ids=[6], now=clock.now())
        await session.commit()
        assert await journal.unreplied() == []


async def test_organisation_times_come_back_aware(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await make_org(sessions, clock)
    async with sessions() as session:
        org = await session.get(Organisation, org_id)
    assert org is not None
    assert org.created_at == clock.now() and org.created_at.utcoffset() is not None


async def test_the_journal_forgets_replies_once_sent_and_prunes_old_rows(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    from scheduler.jobs import prune_journal
    from storage.models import InboundUpdate

    async with sessions() as session:
        journal = Repo(session).journal
        await journal.record_handled(
            rows=[(1, '[{"text": "体温 36.5"}]'), (2, None), (3, None)], now=clock.now()
        )
        await journal.mark_replied(update_ids=[1], now=clock.now())
        await session.commit()
        first = await session.get(InboundUpdate, 1)
        assert first is not None and first.replies is None and first.payload == ""
    clock.advance(timedelta(days=3))
    assert await prune_journal(sessions, clock) == 2
    async with sessions() as session:
        assert await Repo(session).journal.next_offset() == 4  # the newest row is kept


async def test_settled_letters_are_forgotten_after_two_weeks(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    from scheduler.jobs import prune_journal
    from storage.models import Outbox
    from storage.schedules import Letter, OutboxRepo

    org_id = await make_org(sessions, clock)
    day = clock.now().date()
    async with sessions() as session:
        outbox = OutboxRepo(session)
        letters = [
            Letter(
                org_id=org_id,
                channel="telegram",
                address=str(chat),
                kind="alert",
                day=day,
                slot="v1",
                text="体温 38.2",
            )
            for chat in (1, 2, 3)
        ]
        assert await outbox.enqueue(letters, now=clock.now()) == 3
        claimed = await outbox.claim(now=clock.now(), limit=2, lease=timedelta(minutes=2))
        await outbox.settle([(letter.id or 0, {"status": "sent"}) for letter in claimed])
        await session.commit()
    clock.advance(timedelta(days=13))
    await prune_journal(sessions, clock)
    async with sessions() as session:
        assert len((await session.exec(select(Outbox))).all()) == 3
    clock.advance(timedelta(days=2))
    await prune_journal(sessions, clock)
    async with sessions() as session:
        left = (await session.exec(select(Outbox))).all()
    assert [(x.address, x.status) for x in left] == [("3", "pending")]  # never sent: kept


async def test_the_wecom_inbox_claims_only_events_not_handled_and_keeps_their_replies(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """A batch's events are claimed (the count tells a batch another worker took one), their
    replies kept until sent, then forgotten: the inbox's statements, built once, on SQLite
    and PostgreSQL."""
    async with sessions() as session:
        inbox = Repo(session).inbox
        kept = await inbox.journal_many(
            channel="wecom",
            events=[("k1", "zhangsan", "<xml>1</xml>"), ("k2", "lisi", "<xml>2</xml>")],
            now=clock.now(),
        )
        again = await inbox.journal_many(
            channel="wecom", events=[("k2", "lisi", "<xml>2</xml>")], now=clock.now()
        )
        await session.commit()
    assert set(kept) == {"k1", "k2"} and again == {}
    async with sessions() as session:
        inbox = Repo(session).inbox
        assert await inbox.claim(event_ids=[kept["k1"]], now=clock.now()) == 1
        await session.commit()
    clock.advance(timedelta(seconds=1))
    async with sessions() as session:
        inbox = Repo(session).inbox
        rows = [kept["k1"], kept["k2"]]
        assert await inbox.claim(event_ids=rows, now=clock.now()) == 1  # k1 was taken
        await session.rollback()
        assert await inbox.claim(event_ids=[kept["k2"]], now=clock.now()) == 1
        await inbox.keep_replies(replies={kept["k2"]: '[{"text": "已打卡"}]'})
        await session.commit()
        assert await inbox.unhandled(channel="wecom") == []
        unreplied = await inbox.unreplied(channel="wecom")
        assert [(p.id, p.sender, p.body) for p in unreplied] == [
            (kept["k2"], "lisi", '[{"text": "已打卡"}]')
        ]
        await inbox.mark_replied(event_ids=[kept["k2"]], now=clock.now())
        await session.commit()
        assert await inbox.unreplied(channel="wecom") == []
        events = {e.key: e for e in (await session.exec(select(InboundEvent))).all()}
    assert all(e.payload is None and e.replies is None for e in events.values())
    assert events["k1"].handled_at == events["k1"].replied_at == clock.now() - timedelta(seconds=1)
    assert events["k2"].handled_at == events["k2"].replied_at == clock.now()
