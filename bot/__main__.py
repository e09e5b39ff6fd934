"""`python -m bot` is the same as the `daka` console script."""

from bot.cli import main

raise SystemExit(main())
