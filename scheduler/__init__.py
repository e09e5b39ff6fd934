"""When things happen: APScheduler jobs that run beside the bot in the same process."""
