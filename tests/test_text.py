"""Tests for diacritic-insensitive text folding."""

import re
import unicodedata

import pytest

from models.text import MAX_SEARCH_TERMS
from models.text import fold
from models.text import search_terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nguyễn Văn Đức", "nguyen van duc"),
        ("NGUYEN VAN ĐUC", "nguyen van duc"),
        ("  Phường Hạ Long, Quảng Ninh ", "phuong ha long quang ninh"),
        ("Thừa Thiên–Huế", "thua thien hue"),
        ("Đắk Lắk", "dak lak"),
        ("đĐ", "dd"),
        ("Số 12/3 đường 30-4", "so 12 3 duong 30 4"),
        ("a_b", "a b"),
        ("Bà Rịa\t–\nVũng Tàu", "ba ria vung tau"),
    ],
)
def test_fold_lowercases_drops_diacritics_and_collapses_punctuation(text, expected):
    assert fold(text) == expected


def test_fold_removes_every_vietnamese_vowel_diacritic():
    vowels = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
    assert fold(vowels) == "a" * 17 + "e" * 11 + "i" * 5 + "o" * 17 + "u" * 11 + "y" * 5
    assert fold(vowels.upper()) == fold(vowels)


def test_fold_gives_the_same_result_for_composed_and_decomposed_input():
    text = "Nguyễn Thị Hồng Nhung"
    assert fold(unicodedata.normalize("NFD", text)) == "nguyen thi hong nhung"
    assert fold(unicodedata.normalize("NFC", text)) == "nguyen thi hong nhung"


@pytest.mark.parametrize("text", [None, "", "   ", "-- ,. !"])
def test_fold_of_blank_or_punctuation_only_is_empty(text):
    assert fold(text) == ""


def test_search_terms_are_folded_words():
    assert search_terms("  Nguyễn   Văn, Đức ") == ["nguyen", "van", "duc"]


@pytest.mark.parametrize("query", [None, "", "  ", "?!"])
def test_search_terms_of_blank_query_is_empty(query):
    assert search_terms(query) == []


def test_search_terms_are_capped_at_eight():
    words = [f"w{number}" for number in range(12)]
    assert MAX_SEARCH_TERMS == 8
    assert search_terms(" ".join(words)) == words[:8]


def _fold_by_definition(text):
    """fold() as its docstring defines it, character by character (slow, obviously right)."""
    if not text:
        return ""
    text = str(text).lower().replace("đ", "d").replace("Đ", "d")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(part for part in re.split(r"[\W_]+", bare) if part)


def test_fold_matches_its_definition_on_every_bmp_character_and_random_text():
    import random

    for code in range(0x10000):
        text = f"a{chr(code)}b"
        assert fold(text) == _fold_by_definition(text), hex(code)
    vietnamese = "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
    alphabet = vietnamese + vietnamese.upper() + "abcxyz ABC0189,./-_\t\u0301\u0323\u0309ñß\U0001d165😀"
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        assert fold(text) == _fold_by_definition(text), repr(text)
