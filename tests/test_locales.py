"""The gettext catalogs: complete Chinese, placeholders and tags intact, template up to date.

How to refresh the catalogs is written at the top of `babel.cfg`; these tests quote it.
"""

from __future__ import annotations

import re
import shlex
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from domain.i18n import DOMAIN, LOCALES_DIR, Translator

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
POT = LOCALES_DIR / f"{DOMAIN}.pot"
LOCALES = ("zh_Hans", "en")
TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def refresh_commands() -> list[str]:
    """The commands written in babel.cfg's header: extract, then update each locale."""
    lines = [line.lstrip("#").strip() for line in BABEL_CFG.read_text("utf-8").splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/pybabel ")]


def how_to_fix() -> str:
    steps = "\n".join(f"    {command}" for command in refresh_commands())
    return (
        "\nRefresh the catalogs from the repository root:\n"
        f"{steps}\n"
        "then translate the new entries in domain/locales/zh_Hans/LC_MESSAGES/messages.po "
        "(no '#, fuzzy', leave en's msgstr empty)."
    )


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def msgids(catalog: Catalog) -> set[str]:
    return {str(message.id) for message in catalog if message.id}


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def tags(text: str) -> Counter[str]:
    return Counter(TAG.findall(text))


def test_refresh_commands_are_documented() -> None:
    commands = refresh_commands()
    assert len(commands) == 1 + len(LOCALES), commands
    assert " extract " in commands[0]
    for locale in LOCALES:
        assert any(" update " in c and f" -l {locale} " in c for c in commands[1:]), locale


def test_template_is_up_to_date(tmp_path: Path) -> None:
    """Re-extract with the documented command; a string added to the code must be in the .pot."""
    argv = shlex.split(refresh_commands()[0])
    assert argv[:2] == [".venv/bin/pybabel", "extract"]
    output = argv.index("-o") + 1
    argv[output] = str(tmp_path / "fresh.pot")
    argv[:1] = [sys.executable, "-m", "babel.messages.frontend"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    fresh, committed = msgids(load(tmp_path / "fresh.pot")), msgids(load(POT))
    assert fresh, "nothing extracted: is babel.cfg right?"
    added, gone = sorted(fresh - committed), sorted(committed - fresh)
    assert not added and not gone, (
        f"{POT.relative_to(ROOT)} is out of date with the code.\n"
        f"New strings: {added}\nRemoved strings: {gone}{how_to_fix()}"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_matches_template(locale: str) -> None:
    catalog, template = load(po_path(locale), locale), msgids(load(POT))
    missing = sorted(template - msgids(catalog))
    stale = sorted(msgids(catalog) - template)
    assert not missing and not stale, (
        f"{locale} catalog is out of date: missing {missing}, obsolete {stale}{how_to_fix()}"
    )
    fuzzy = sorted(str(m.id) for m in catalog if m.id and m.fuzzy)
    assert not fuzzy, f"{locale}: check these translations, then remove '#, fuzzy': {fuzzy}"


def test_every_string_has_a_chinese_translation() -> None:
    catalog = load(po_path("zh_Hans"), "zh_Hans")
    untranslated = sorted(
        str(message.id)
        for message in catalog
        if message.id and (not message.string or not str(message.string).strip())
    )
    assert not untranslated, f"Translate into Chinese (zh_Hans): {untranslated}{how_to_fix()}"


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders_and_tags(locale: str) -> None:
    problems = []
    for message in load(po_path(locale), locale):
        if not message.id or not message.string:
            continue
        source, target = str(message.id), str(message.string)
        if placeholders(source) != placeholders(target):
            problems.append(f"{source!r}: placeholders {placeholders(target)}")
        if tags(source) != tags(target):
            problems.append(f"{source!r}: tags {sorted(tags(target).elements())}")
    assert not problems, "\n".join(problems)


def test_the_bot_loads_the_catalogs() -> None:
    """What users get: domain.i18n reads the .po files; English falls back to the msgid."""
    i18n = Translator(path=LOCALES_DIR, default_locale="zh_Hans", domain=DOMAIN)
    assert set(LOCALES) <= set(i18n.available_locales)
    chinese = load(po_path("zh_Hans"), "zh_Hans")
    for message in chinese:
        if message.id:
            msgid = str(message.id)
            assert i18n.gettext(msgid, locale="zh_Hans") == message.string
            assert i18n.gettext(msgid, locale="en") == msgid


def test_every_text_is_translated_by_domain_i18n() -> None:
    """One translator for every channel: aiogram's gettext reads a context only its own
    middleware sets, so a module using it fails (LookupError) wherever that middleware did not
    run -- the demo's page, the scheduler, the core."""
    root = Path(__file__).resolve().parent.parent
    users = [
        str(path.relative_to(root))
        for package in ("bot", "domain", "handlers", "scheduler", "storage")
        for path in (root / package).rglob("*.py")
        if "aiogram.utils.i18n" in path.read_text(encoding="utf-8")
    ]
    assert users == []
