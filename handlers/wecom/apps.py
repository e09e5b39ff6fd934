"""Several self-built apps of one corporation in one deployment, each serving one
organisation (`daka org set SLUG --wecom-agent AGENT_ID`): the outbox's letters on the "wecom"
channel go through the app of the letter's organisation.

A member's user id is the corporation's (unique within it, the same in every app of it), so
people stay known by user id alone; only the door a letter leaves by depends on the app. An
organisation that no app serves is reached through the first app (`WECOM_*`), as when a
deployment had one app; one served by an app this deployment has no settings for gets nothing
(refused, with the reason), rather than a message from another organisation's app."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from domain.delivery import EveryWindows, Letter, Outcome, Pace, Refused
from handlers.wecom.courier import SETTING_TTL, WECOM_PACE, WeComCourier
from handlers.wecom.messages import CHANNEL

log = logging.getLogger(__name__)

AppsServing = Callable[[], Awaitable[Mapping[int, str]]]  # org id -> the app (agent id) serving it
ROUTES_TTL: Final = SETTING_TTL  # seconds which app serves which organisation is trusted


class AppsCourier:
    """The "wecom" channel's courier when the deployment has several apps: each letter is
    handed to the courier of the app serving its organisation (its own API client, token and
    text-only setting). The sender keeps one pace for the channel, and counts a member's
    letters against every app's count (each app's replies counted in its own): a letter
    waits for the fullest; stricter than WeCom's per app and member limits, never looser."""

    channel = CHANNEL

    def __init__(
        self,
        couriers: Mapping[int, WeComCourier],
        *,
        first: int,
        serving: AppsServing,
        pace: Pace = WECOM_PACE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if first not in couriers:
            raise ValueError(f"no courier for the first app {first}")
        self.couriers = dict(couriers)
        self.first = first
        self.pace = pace
        self._serving = serving
        self._monotonic = monotonic
        self._routes: tuple[float, Mapping[int, str]] | None = None
        counts = [courier.recipients for courier in self.couriers.values()]
        # Every app's count per member (replies included), seen as one by the sender.
        self.recipients = EveryWindows(tuple(counts))

    async def deliver(self, letter: Letter) -> Outcome:
        agent = await self.agent_of(letter.org_id)
        courier = self.couriers.get(agent) if agent is not None else None
        if courier is None:
            log.warning(
                "wecom letter of organisation %s: its app %s is not one of this deployment's "
                "(WECOM_AGENT_ID, WECOM_APPS)",
                letter.org_id,
                agent,
            )
            return Refused(f"the organisation's WeCom app {agent} is not configured here")
        return await courier.deliver(letter)

    async def agent_of(self, org_id: int) -> int | None:
        """The app serving the organisation (the first app when none does); None when the app
        it names is not a number (not an app of this channel)."""
        now = self._monotonic()
        if self._routes is None or now - self._routes[0] > ROUTES_TTL:
            self._routes = (now, await self._serving())
        app = self._routes[1].get(org_id)
        if app is None:
            return self.first
        try:
            return int(app)
        except ValueError:
            return None
