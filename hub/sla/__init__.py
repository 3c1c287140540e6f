"""Service levels: policies, business-hours calendars, timers, warnings and breaches."""
