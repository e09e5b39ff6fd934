"""In-process couriers for the sender's tests: they take letters the way a channel's courier
does, write down each attempt in a log that several of them may share (so a test sees how
channels interleave), and answer what the test tells them to."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.delivery import SENT, Letter, Outcome, Pace


@dataclass(frozen=True)
class Attempt:
    channel: str
    address: str
    text: str
    outcome: Outcome


@dataclass
class RecordingCourier:
    """A channel's courier that delivers into `log`; `answers` are given, one an attempt,
    before it starts answering "sent"."""

    channel: str
    pace: Pace
    log: list[Attempt] = field(default_factory=list)
    answers: list[Outcome] = field(default_factory=list)

    async def deliver(self, letter: Letter) -> Outcome:
        outcome = self.answers.pop(0) if self.answers else SENT
        self.log.append(Attempt(self.channel, letter.address, letter.text, outcome))
        return outcome

    def delivered(self, address: str | None = None) -> list[str]:
        """The texts it delivered (to `address`), in order."""
        return [
            a.text
            for a in self.log
            if a.channel == self.channel
            and a.outcome is SENT
            and (address is None or a.address == address)
        ]
