"""The Telegram channel: its courier for the outbox and its one Bot API error policy (the
routers, keyboards and middlewares join them here)."""
