"""Who works on what: teams, availability and automatic assignment."""
