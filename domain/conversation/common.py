"""What anybody may say at any moment: /help, /cancel, /language, the member's standing menu,
and what Daka answers to a command it does not know, to chatter, and to a button nobody claims.

When these apply (/help and /language only outside a conversation, /cancel from any state) is
`domain.conversation.dispatch`'s routing, the same for every channel."""

from __future__ import annotations

from domain.conversation.io import Ask, Option
from domain.conversation.keys import BadKey, Key
from domain.conversation.photos import discard_draft_photos
from domain.conversation.turn import Turn, Visitor
from domain.i18n import LOCALE_OF, _, __
from domain.i18n import current as translator
from storage.models import Member, Organisation
from storage.repo import Repo

CHECKIN_BUTTON = __("✅ Check in")
TODAY_BUTTON = __("📋 Today")
HISTORY_BUTTON = __("🗓 History")

# The member's standing menu (`Ask.MENU`), in rows: each entry's label and the command it
# stands for. A channel shows it its own way (Telegram: a reply keyboard, whose press comes
# back as the label's text; a channel with a menu of its own sends the command).
MENU = (((CHECKIN_BUTTON, "checkin"),), ((TODAY_BUTTON, "today"), (HISTORY_BUTTON, "history")))


def menu_command(text: str) -> str | None:
    """The command of the menu entry labelled `text` in the current language, if any."""
    for row in MENU:
        for label, command in row:
            if text == str(label):
                return command
    return None


class LanguageKey(Key, prefix="lang"):
    """A press on one of /language's choices ("zh", "en"; anything else is stale)."""

    language: str


async def member_and_org(repo: Repo, visitor: Visitor) -> tuple[Member, Organisation] | None:
    """The enrolment used for checking in and its organisation (prefetched with the visitor
    when it can be: their organisations are rows read with them, not in the session, which
    `repo.orgs.get` would read again); None when the sender is not enrolled."""
    member = visitor.member
    if member is None:
        return None
    org = visitor.org
    if org is None or org.id != member.org_id:
        org = visitor.orgs.get(member.org_id) or await repo.orgs.get(org_id=member.org_id)
    return member, org


def menu_for(visitor: Visitor) -> Ask | None:
    """The member's standing menu goes with a reply to a member, and only to a member (who has
    not withdrawn their consent: there is nothing for them to check in to)."""
    member = visitor.member
    return Ask.MENU if member is not None and member.withdrawn_at is None else None


def help_text(visitor: Visitor) -> str:
    lines = [
        _("<b>Daka daily check-in</b>"),
        "",
        _("/checkin — check in for today (or change today's answers)"),
        _("/today — what I reported today"),
        _("/history — my last 14 days"),
        _("/mydata — everything stored about you, and who can read it"),
        _("/withdraw — withdraw your consent and stop checking in"),
        _("/language — 中文 / English"),
        _("/cancel — stop the current step"),
    ]
    if visitor.roles:
        lines += [
            "",
            _("/summary [date] — figures of your scope, unit by unit"),
            _("/missing [date] — who has not checked in, with a nudge button"),
            _("/abnormal [date] — abnormal check-ins"),
            _("/member ID — one member's last 14 days"),
            _("/export [csv] [date | from to] — a spreadsheet of your scope"),
            _("/where [date] — where your scope checked in from"),
            _("/trend [days] — a chart of the reporting rate and abnormal count"),
            _("/excuse ID FROM TO REASON — excuse a member (leave, sick)"),
            _("/roster — upload a roster file for your scope"),
            _("/schedule — reminder times, cutoff and report time of your scope"),
        ]
    if not (visitor.members or visitor.roles):
        lines += ["", _("You are not enrolled yet: open the invite link you were given.")]
    return "\n".join(lines)


async def on_help(turn: Turn) -> None:
    await turn.out.say(help_text(turn.visitor))


async def on_cancel(turn: Turn) -> None:
    """/cancel leaves whatever conversation is under way, recording nothing of it (a check-in
    draft's photos go too)."""
    if await turn.state.get_state() is None:
        await turn.out.say(_("There is nothing to cancel."))
        return
    await discard_draft_photos(turn, await turn.state.get_data())
    await turn.state.clear()
    # Not enrolled: take away whatever picker the conversation had left (there is no menu).
    await turn.out.say(
        _("Cancelled. Nothing was recorded."), ask=menu_for(turn.visitor) or Ask.CLEAR
    )


async def on_language(turn: Turn) -> None:
    await turn.out.say(
        _("Choose your language:"),
        [[language_option("中文", "zh"), language_option("English", "en")]],
    )


def language_option(label: str, language: str) -> Option:
    return Option(label, key=LanguageKey(language=language).pack())


async def on_language_chosen(turn: Turn, key: str) -> None:
    """Keeps the choice on the account; says so, and shows /help, in the new language."""
    try:
        language = LanguageKey.unpack(key).language
    except BadKey:
        await on_stale_press(turn)
        return
    if language not in LOCALE_OF:
        await turn.out.notice(_("This button has expired."))
        return
    account = await turn.visitor.ensure_account(turn.repo, turn.clock.now())
    account.language = language
    await turn.repo.session.flush()
    with translator().use_locale(LOCALE_OF[language]):
        await turn.out.notice()
        await turn.out.replace(_("Language set to English."))
        await turn.out.say(help_text(turn.visitor), ask=menu_for(turn.visitor))


async def on_stale_press(turn: Turn) -> None:
    """A press nothing claims: an old message's button, or forged data."""
    await turn.out.notice(_("This button has expired. Send /checkin to start again."), alert=True)


async def on_unknown_command(turn: Turn) -> None:
    await turn.out.say(_("I don't know that command. Send /help to see what I can do."))


async def on_anything_else(turn: Turn) -> None:
    """Chatter, stickers, a location out of the blue: point to the way in."""
    if turn.visitor.member is None:
        await turn.out.say(
            _("Hello! To start, open the invite link from your counselor or village cadre.")
        )
        return
    if turn.visitor.member.withdrawn_at is not None:
        await turn.out.say(_("Send /help to see what I can do."), ask=Ask.CLEAR)
        return
    await turn.out.say(
        _("Send /checkin to check in, or /help to see what I can do."), ask=Ask.MENU
    )
