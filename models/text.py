"""Text folding for diacritic-insensitive Vietnamese search."""

import functools
import re
import unicodedata

MAX_SEARCH_TERMS = 8

# Any run of characters that are not letters or digits (underscore included).
_SEPARATORS = re.compile(r"[\W_]+")


def _combining_marks():
    """A character class of every combining mark in the Basic Multilingual Plane, as ranges."""
    ranges, start, previous = [], None, None
    for code in range(0x300, 0x10000):
        if unicodedata.combining(chr(code)):
            if start is None:
                start = code
            elif code != previous + 1:
                ranges.append((start, previous))
                start = code
            previous = code
    ranges.append((start, previous))
    return re.compile("[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges) + "]")


_COMBINING = _combining_marks()
_BEYOND_BMP = re.compile("[\\U00010000-\\U0010ffff]")


def _latin_table():
    """str.translate table: each precomposed Latin letter whose diacritics fold away to its ASCII
    base letter (đ to d), and ASCII punctuation to a space."""
    table = {code: " " for code in range(0x80) if not chr(code).isalnum()}
    for code in (*range(0x80, 0x250), *range(0x1E00, 0x1F00)):
        bare = "".join(c for c in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(c))
        if bare != chr(code) and bare.isascii() and bare.isalnum():
            table[code] = bare
    table[ord("đ")] = "d"
    return table


_LATIN = _latin_table()


def fold(text):
    """Lowercase, drop Vietnamese diacritics, map đ to d and collapse punctuation to single spaces."""
    if not text:
        return ""
    text = str(text).lower()  # "Đ" becomes "đ"
    if text.isascii():  # codes, phone and ID numbers, unaccented names: nothing to decompose
        return text if text.isalnum() else _SEPARATORS.sub(" ", text).strip()
    # Vietnamese typed as usual, one precomposed letter each: a table lookup per character.
    bare = text.translate(_LATIN)
    if bare.isascii():
        return " ".join(bare.split())
    # Combining marks, or letters the table does not hold: decompose.
    text = text.replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    if _BEYOND_BMP.search(decomposed):  # rare: marks beyond the BMP are not in _COMBINING
        bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    else:
        bare = _COMBINING.sub("", decomposed)
    return _SEPARATORS.sub(" ", bare).strip()


@functools.lru_cache(maxsize=1 << 16)
def fold_name(name):
    """fold() of a person's name, remembered: a province's names repeat, and imports and the
    duplicate search fold each one several times."""
    return fold(name)


def search_terms(query):
    """Fold a search query and split it into at most MAX_SEARCH_TERMS words."""
    return fold(query).split()[:MAX_SEARCH_TERMS]
