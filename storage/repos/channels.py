"""How each organisation is served on a channel beside Telegram (`OrgChannel`): which of the
channel's apps serves it, and how."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import columns_of, core_rows, detached
from storage.models import Organisation, OrgChannel
from storage.repos.common import Conflict

UNSET = object()

# Built once (each batch of WeCom's turns asks it), as Core rows: what it gives is only read.
_ORG_COLUMNS = columns_of(Organisation)
_SERVING = (
    select(*_ORG_COLUMNS, *columns_of(OrgChannel))
    .join(OrgChannel, col(OrgChannel.org_id) == col(Organisation.id))
    .where(col(OrgChannel.channel) == bindparam("channel"))
    .where(col(OrgChannel.app_id) == bindparam("app"))
)


@dataclass(frozen=True, slots=True)
class Served:
    """An organisation and how a channel serves it."""

    org: Organisation
    setting: OrgChannel


class ChannelRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_org(self, *, org_id: int, channel: str) -> OrgChannel | None:
        stmt = select(OrgChannel).where(OrgChannel.org_id == org_id, OrgChannel.channel == channel)
        return (await self.session.exec(stmt)).first()

    async def serving(self, *, channel: str, app_id: str) -> Served | None:
        """The organisation the channel's app `app_id` serves, if one does: to read, not
        the session's objects (`of_org` gives the setting to change)."""
        rows = await core_rows(self.session, _SERVING, {"channel": channel, "app": app_id})
        if not rows:
            return None
        width = len(_ORG_COLUMNS)
        row = rows[0]
        return Served(detached(Organisation, row[:width]), detached(OrgChannel, row[width:]))

    async def apps(self, *, channel: str) -> dict[int, str]:
        """Which app of the channel serves each organisation an app serves (by org id)."""
        stmt = select(col(OrgChannel.org_id), col(OrgChannel.app_id)).where(
            OrgChannel.channel == channel, col(OrgChannel.app_id).is_not(None)
        )
        return {
            org_id: app_id for org_id, app_id in (await self.session.exec(stmt)).all() if app_id
        }

    async def configure(
        self,
        *,
        org_id: int,
        channel: str,
        app_id: str | object | None = UNSET,
        ids_are_member_ids: bool | None = None,
        text_only: bool | None = None,
    ) -> OrgChannel:
        """Change what is given (an app: `None` takes it away), keeping the rest; Conflict when
        the app serves another organisation already. Whether the deployment has the app is
        the caller's to check (`daka org set` reads the settings)."""
        setting = await self.of_org(org_id=org_id, channel=channel)
        if setting is None:
            setting = OrgChannel(org_id=org_id, channel=channel)
            self.session.add(setting)
        if app_id is not UNSET:
            assert app_id is None or isinstance(app_id, str)
            if app_id is not None:
                other = await self.serving(channel=channel, app_id=app_id)
                if other is not None and other.org.id != org_id:
                    raise Conflict(
                        f"{channel} app {app_id} already serves organisation {other.org.slug!r}"
                    )
            setting.app_id = app_id
        if ids_are_member_ids is not None:
            setting.ids_are_member_ids = ids_are_member_ids
        if text_only is not None:
            setting.text_only = text_only
        await self.session.flush()
        return setting
