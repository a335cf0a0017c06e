"""Whether an international domain may be shown in Unicode, or stays in its ASCII form because
it could pass for another domain: a simplified form of what browsers decide.

A label is shown in Unicode when its characters are of one script, or of a mix one language
writes (Unicode's "highly restrictive" level, UTS #39: Latin with Japanese, Chinese or Korean
writing), its digits of one system, and none of the patterns browsers refuse: a Latin letter
beyond ASCII beside another script; a combining diacritic after a letter that is not Latin,
Greek or Cyrillic; a dot above `i`, `j`, `l` or a dotless i (which then looks like `i`);
the kana voicing marks on their own; the kana length mark (a dash) not after kana; a label
made only of the Cyrillic letters that look Latin (`apple` in Cyrillic) under an ASCII
top-level domain. A letter's script is read from its Unicode name (the standard library has
no script property). Not covered: the confusables tables browsers carry, which catch
lookalikes of known domains beyond these.
"""

from __future__ import annotations

import unicodedata

_LANGUAGE_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
# Names whose first word is not their script: 々 and 〆 are Han; Arabic's two digit sets.
_NAMED_SCRIPTS = {"IDEOGRAPHIC": "CJK", "ARABIC-INDIC": "ARABIC", "EXTENDED": "ARABIC"}
# The Cyrillic letters that look like Latin ones (a label of only these passes for Latin).
_LATIN_ALIKE_CYRILLIC = frozenset(
    "\u0430\u0441\u0501\u0435\u04bb\u0456\u0458\u04cf\u043e\u0440\u0517\u051b\u0455\u051d"
    "\u0445\u0443\u044a\u042c\u04bd\u043f\u0433\u0475\u0461"
)
_DIACRITICS = frozenset(map(chr, range(0x300, 0x33A)))  # the combining marks browsers allow
_DOT_ABOVE = "\u0307"
_KANA_VOICING = frozenset("\u3099\u309a")
_LENGTH_MARK = "\u30fc"  # ー: a dash beside anything but kana


def shown_in_unicode(labels: list[str]) -> bool:
    """Whether a decoded domain's labels may all be shown in Unicode."""
    tld_is_ascii = labels[-1].isascii()
    return all(label.isascii() or _safe(label, tld_is_ascii) for label in labels)


def _safe(label: str, tld_is_ascii: bool) -> bool:
    scripts = [_script(char) for char in label]
    named = set(scripts) - {""}
    if len(named) > 1 and not any(named <= mix for mix in _LANGUAGE_MIXES):
        return False
    beyond_ascii = (s for c, s in zip(label, scripts, strict=True) if not c.isascii())
    if len(named) > 1 and "LATIN" in beyond_ascii:
        return False
    if len({_digit_system(char) for char in label if char.isdigit()}) > 1:
        return False
    if named == {"CYRILLIC"} and tld_is_ascii and _latin_alike(label):
        return False
    return not _dangerous(label, scripts)


def _latin_alike(label: str) -> bool:
    """Whether a Cyrillic label's letters are all ones that look Latin."""
    letters = {char for char in label if unicodedata.category(char).startswith("L")}
    return letters <= _LATIN_ALIKE_CYRILLIC


def _dangerous(label: str, scripts: list[str]) -> bool:
    """The patterns browsers refuse in a label otherwise fine."""
    if _KANA_VOICING & set(label) or label.startswith(_LENGTH_MARK):
        return True
    # each character with the one before it and that one's script
    for before, char, script in zip(label, label[1:], scripts, strict=False):
        after_lgc = script in ("LATIN", "GREEK", "CYRILLIC") and before != "\u0131"
        if char in _DIACRITICS and not after_lgc:
            return True
        if char == _DOT_ABOVE and before in "ijl\u0131":
            return True
        if char == _LENGTH_MARK and script not in ("KATAKANA", "HIRAGANA"):
            return True
    return False


def _script(char: str) -> str:
    """A character's script by the first word of its Unicode name (`CYRILLIC SMALL LETTER
    A`), an ASCII letter's LATIN; "" for what scripts share (ASCII digits, hyphens, the
    generic combining marks, the Japanese length mark)."""
    if char.isascii():
        return "LATIN" if char.isalpha() else ""
    if unicodedata.category(char)[0] not in "LMN":
        return ""
    words = unicodedata.name(char, "").split(" ")
    if words[0] == "COMBINING":  # generic, unless a script's own (COMBINING CYRILLIC TITLO)
        return "CYRILLIC" if words[1:2] == ["CYRILLIC"] else ""
    script = _NAMED_SCRIPTS.get(words[0], words[0])
    return "" if "-" in script else script  # KATAKANA-HIRAGANA PROLONGED SOUND MARK


def _digit_system(char: str) -> str:
    return "ASCII" if char.isascii() else _script(char)
