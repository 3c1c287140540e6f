"""Settings: environment, TOML file, defaults."""
