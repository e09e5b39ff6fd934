"""Daka: the wiring of the check-in bot (configuration, app, CLI, middlewares, i18n)."""
