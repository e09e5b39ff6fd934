"""Daka: the wiring of the check-in bot (configuration, app, CLI, middlewares, i18n).

Importing it installs the performance shims (`bot.shims`), before anything imports aiogram."""

from bot.shims import install as _install_shims

_install_shims()
