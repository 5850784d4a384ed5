"""Deployment defaults, in a module light enough for the CLI to import at start-up."""

DEFAULT_CRON = "0 * * * *"  # curate-incremental: new objects are picked up within the hour
DEFAULT_POOL = "capflow"  # the work pool `capflow deploy` registers on
