"""`python -P -m bot.makers`: the process the bot makes its exports in (`storage.makers`), with
the shims installed (`import bot` does it: the one-trip SQLite adapter and the XLSX row splice;
aiogram is never imported). `python -m storage.makers` does the same work on the stock paths."""

from storage.makers import main

if __name__ == "__main__":
    raise SystemExit(main())
