"""`daka demo`: the real bot against the built-in local Bot API (:mod:`bot.localapi`), with a
web chat on 127.0.0.1 where a person plays a sample school's students and teachers.

:mod:`.school` seeds the school with the `daka` commands, :mod:`.webchat` serves the page and its
JSON API, :mod:`.runner` puts them together with the bot (the `daka run` code path, polling).
"""
