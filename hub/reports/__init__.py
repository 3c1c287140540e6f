"""Reports over the store: volume, response times, SLA, satisfaction, intents, out-of-stock demand."""
