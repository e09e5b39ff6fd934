"""The unit tree of an organisation: materialised paths and the closure table kept together."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Unit, UnitLink
from storage.repos.common import NotFound


def split_unit_path(path: str) -> list[str]:
    """Unit paths are names joined by `/`; blanks around names are ignored."""
    parts = [p.strip() for p in path.strip().strip("/").split("/")]
    if not parts or any(not p for p in parts):
        raise ValueError(f"bad unit path {path!r}: names joined by '/', none empty")
    return parts


class UnitRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name_path(self, *, org_id: int, name_path: str) -> Unit | None:
        key = "/".join(split_unit_path(name_path))
        stmt = select(Unit).where(Unit.org_id == org_id, Unit.name_path == key)
        return (await self.session.exec(stmt)).first()

    async def require(self, *, org_id: int, name_path: str) -> Unit:
        unit = await self.by_name_path(org_id=org_id, name_path=name_path)
        if unit is None:
            raise NotFound(f"no unit {name_path!r}")
        return unit

    async def get(self, *, unit_id: int) -> Unit:
        unit = await self.session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(f"no unit #{unit_id}")
        return unit

    async def ensure(self, *, org_id: int, name_path: str) -> Unit:
        """The unit at `name_path`, creating it and any missing parents on the way."""
        names = split_unit_path(name_path)
        parent: Unit | None = None
        for depth in range(len(names)):
            key = "/".join(names[: depth + 1])
            stmt = select(Unit).where(Unit.org_id == org_id, Unit.name_path == key)
            unit = (await self.session.exec(stmt)).first()
            if unit is None:
                unit = Unit(
                    org_id=org_id,
                    parent_id=parent.id if parent else None,
                    name=names[depth],
                    name_path=key,
                    depth=depth,
                )
                self.session.add(unit)
                await self.session.flush()
                assert unit.id is not None
                unit.path = f"{parent.path if parent else '/'}{unit.id}/"
                await self._link(unit.id, parent.id if parent else None)
                await self.session.flush()
            parent = unit
        assert parent is not None
        return parent

    async def _link(self, unit_id: int, parent_id: int | None) -> None:
        """Closure rows for a new leaf: itself, and each of its parent's ancestors one deeper."""
        self.session.add(UnitLink(ancestor_id=unit_id, descendant_id=unit_id, depth=0))
        if parent_id is not None:
            stmt = select(UnitLink).where(UnitLink.descendant_id == parent_id)
            for link in (await self.session.exec(stmt)).all():
                self.session.add(
                    UnitLink(
                        ancestor_id=link.ancestor_id, descendant_id=unit_id, depth=link.depth + 1
                    )
                )

    async def children(self, *, unit_id: int) -> Sequence[Unit]:
        stmt = select(Unit).where(Unit.parent_id == unit_id).order_by(col(Unit.name))
        return (await self.session.exec(stmt)).all()

    async def roots(self, *, org_id: int) -> Sequence[Unit]:
        stmt = (
            select(Unit)
            .where(Unit.org_id == org_id, col(Unit.parent_id).is_(None))
            .order_by(col(Unit.name))
        )
        return (await self.session.exec(stmt)).all()

    async def all(self, *, org_id: int) -> Sequence[Unit]:
        stmt = select(Unit).where(Unit.org_id == org_id).order_by(col(Unit.name_path))
        return (await self.session.exec(stmt)).all()
