"""Benchmarks that drive the real bot process over HTTP through the fake Telegram Bot API."""
