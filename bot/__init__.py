"""Daka: the wiring of the check-in bot (configuration, app, CLI, middlewares, i18n)."""

from handlers.telegram import _aiogram_lazy  # noqa: F401  (before anything imports aiogram)
