"""Search over conversations, the q= of the inbox and the API, in one place:

- page.py: the page of a listing with q=, found the cheapest way for the text (the indexes, or a
  walk in activity order for a common text);
- substrings.py: the text anywhere in a conversation's subject, its customer's name or addresses;
- message_words.py: the words of the text in the conversation's messages;
- message_index.py: the SQLite message index kept up to date in the background.

What a search box accepts at all (control characters, length) is hub/store/search_text.py's.
"""
