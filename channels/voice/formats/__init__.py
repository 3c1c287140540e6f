"""One module per family of transcript formats. Each parser takes the decoded document (text or
JSON) and returns Turns with the roles the format states ("unknown" where it states none); parse.py
recognises the format and applies the role rule."""
