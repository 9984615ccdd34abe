"""Text folding for diacritic-insensitive Vietnamese search."""

import re
import unicodedata

MAX_SEARCH_TERMS = 8

# Any run of characters that are not letters or digits (underscore included).
_SEPARATORS = re.compile(r"[\W_]+")


def fold(text):
    """Lowercase, drop Vietnamese diacritics, map đ to d and collapse punctuation to single spaces."""
    if not text:
        return ""
    text = str(text).lower().replace("đ", "d").replace("Đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _SEPARATORS.sub(" ", bare).strip()


def search_terms(query):
    """Fold a search query and split it into at most MAX_SEARCH_TERMS words."""
    return fold(query).split()[:MAX_SEARCH_TERMS]
