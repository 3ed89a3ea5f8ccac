"""`python -m bot`: the Telegram front end against a running Rasa server (RASA_URL)."""

from bot.app import main

raise SystemExit(main())
