"""Pure-Python re-implementation of the Stanford PTBTokenizer that ``pycocoevalcap`` runs (CoreNLP 3.4.1,
``-preserveLines -lowerCase``), for machines without Java (docs/xfm.md#caption-metrics).

:func:`ptb_lines` returns the tokens the Java tokenizer prints for each caption; the caption metrics
then drop ``PTB_PUNCTUATION`` exactly as from the Java output. The rules below were established by
running the jar on probes, and checked against it on every character of the Basic Multilingual Plane
and on some 300,000 random and caption-like lines; ``tests/fixtures/ptb`` records the jar's output on
a corpus of tricky captions, which ``tests/metrics/test_ptb_fallback.py`` compares with this module.

The lexer, like the jar's (a JFlex scanner): at each position every rule is tried, the longest match
wins (a rule's trailing context counts towards its length but is not consumed), equal lengths go to the
earlier rule. Matching ignores case except where the jar uses a character class (``Ark.`` is an
abbreviation, ``ark.`` is not). What the rules do:

* ``cannot gonna gotta wanna lemme gimme 'tis 'twas`` are split (``can not``, ``gon na``, ``'t is``);
  ``c++ c# f#`` and SGML tags (``<b>``, ``<a href=x>``: spaces become U+00A0) stay whole.
* ``– — ―`` and ``&mdash;`` become ``--``; ``&amp;`` becomes ``&``; ``&quot;`` a double quote.
* Words are letters, then letters or digits, with ``. ! ?`` between letters (``dog.on``, ``u.s``).
  ``'s 'm 'd 're 've 'll`` and ``n't`` are cut off (``ca n't``, ``dog 's``); ``o'clock ma'am 'em 'n'
  '90s y'`` stay whole, ``dogs'`` is ``dogs '``; hyphens and underscores join (``well-known 3-d x_y``).
* URLs (``http://...``, ``www.x.yz``, ``x.com``), e-mail addresses, ``@name``, ``#letters`` and file
  names with a known extension (``img2.jpg``) are one token.
* Numbers (``1,000 3.5 -5 10:30 1.2.3``), dates (``10/20/2020``), fractions (``1/2``; ``1 1/2`` is one
  token with U+00A0), phone numbers (``555 123 4567``), ``and/or``. ``½ ¼ ¾ ⅓ ⅔`` become ``1/2`` etc.,
  ``€`` becomes ``$``, ``£`` ``#``, ``¢`` ``cents``; ``$``, ``US$``, ``#`` are tokens of their own.
* A period stays on: a single letter (``c.``), an acronym (``u.s.``, ``a.m.``), the jar's abbreviation
  lists (titles, months, states, companies, ``etc. vs. jr. st. ...``), ``no. fig. art. pp. ...`` before a
  number, and any word followed by ``, ; :`` (``dog.,`` gives ``dog.`` ``,``). A single letter before a
  sentence-starting word (``vitamin C. The``) loses it, also across a line break: a caption's tokens
  can depend on the next caption, as in the Java run over all captions at once.
* Quotes (``' " ‘ ’ “ ” « » ‹ ›``) become LaTeX quotes (a backquote or an apostrophe, single or
  doubled), which the metrics drop; two adjacent quote characters are one token (``“”`` gives four
  characters, which the metrics keep); ``„ ‚ ‟`` stay as they are.
* ``( ) [ ] { }`` become ``-LRB- -RRB- -LSB- -RSB- -LCB- -RCB-`` (kept by the metrics once lowercased);
  ``< >`` stay; smileys (``:) ;-) :D ^_^``) are one token.
* ``--`` and 5+ hyphens stay, 3-4 hyphens become ``--``; ``... …`` and ``. . .`` become ``...``; a
  run of ``?``/``!`` is one token (the metrics keep ``?!``). Symbols (``% & + = ~ ^ | * © ° × → ♥``,
  the jar's list) are single tokens; characters the jar does not know (emoji and everything else
  outside the Basic Multilingual Plane, variation selectors, ``‒``, a lone ``‐``) are deleted.

Letters and digits are Python's (Unicode 14 in Python 3.11) less those added after the jar's tables (Unicode 6).
Known differences from the jar, none of them in the metrics' output for a plausible caption: the extra
``.`` token the jar emits after some abbreviations (``jr. .``) is not reproduced (the metrics drop it),
and a Greek capital sigma next to digits or symbols (``ΟΣ8``) may be lowercased to the other sigma.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# pycocoevalcap (and ptb_tokenize) turn line breaks inside a caption into spaces before tokenising
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

_SPACE = r" \t\u00a0\u2000-\u200a\u3000"
_NEWLINE = r"\r\n\u2028\u2029\u000b\u000c\u0085"
# characters that are one-character tokens (the jar's symbol class; "% & + ~ ^ | \" are added where used)
_SYMBOLS = (
    r"\u00a1\u00a6-\u00a9\u00ac\u00ae-\u00b1\u00b4\u00b6-\u00b8\u00bf\u00d7\u00f7\u037e\u0387\u0589\u05be\u05c0\u05c3"
    r"\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a\u060c\u0614\u061b\u061e\u061f\u066a\u066d\u06d4\u0700-\u070d\u07f6-\u07f8"
    r"\u0964\u0965\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044\u207a-\u207e\u208a-\u208e\u2100\u2101"
    r"\u2103-\u2106\u2108\u2109\u2114\u2116-\u2118\u211e-\u2123\u2125\u2127\u2129\u212e\u213a\u213b\u2140-\u2144"
    r"\u214a-\u214d\u214f\u2190-\u2bff\u3002\u3012\u30fb\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
# Letters and digits Python knows that the jar's tables (Unicode 6) do not (Python 3.11's Unicode 14)
_NEWER_LETTERS = (
    r"\u037f\u0528-\u052f\u0560\u0588\u05ef\u0860-\u086a\u0870-\u0887\u0889-\u088e\u08a1\u08ad-\u08c9\u0978\u0980\u09fc"
    r"\u0af9\u0c34\u0c5a\u0c5d\u0c80\u0cdd\u0d04\u0d54-\u0d56\u0d5f\u0e86\u0e89\u0e8c\u0e8e-\u0e93\u0e98\u0ea0\u0ea8-\u0ea9"
    r"\u0eac\u13f5\u13f8-\u13fd\u16f1-\u16f8\u170d\u171f\u1878\u191d-\u191e\u19b0-\u19c0\u19c8-\u19c9\u1b4c\u1c80-\u1c88"
    r"\u1c90-\u1cba\u1cbd-\u1cbf\u1cf2-\u1cf3\u1cfa\u2c2f\u2c5f\u312e-\u312f\u31bb-\u31bf\u4db6-\u4dbf\u9fcd-\u9fff"
    r"\ua698-\ua69d\ua78f\ua794-\ua79f\ua7ab-\ua7ca\ua7d0-\ua7d1\ua7d3\ua7d5-\ua7d9\ua7f2-\ua7f7\ua8fd-\ua8fe\ua9e0-\ua9e4"
    r"\ua9e6-\ua9ef\ua9fa-\ua9fe\uaa7e-\uaa7f\uab30-\uab5a\uab5c-\uab69\uab70-\uabbf"
)
_NEWER_DIGITS = r"\u0de6-\u0def\ua9f0-\ua9f9"
# what else the jar lets into words: soft hyphen, combining marks and modifier symbols of some scripts
_WORD_EXTRA = (
    r"\u00ad\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02eb\u02ed\u02ef-\u036f\u0375\u0378-\u0379\u0384-\u0385\u03f6\u0483-\u0487"
    r"\u055a-\u055f\u0591-\u05bd\u05bf\u05c1-\u05c2\u05c4-\u05c5\u05c7\u0615-\u061a\u064b-\u065e\u0670\u06d6-\u06e4"
    r"\u06e7-\u06ed\u06fd-\u06fe\u070f\u0711\u0730-\u074c\u07a6-\u07b0\u07eb-\u07f3\u0900-\u0903\u093c\u093e-\u094e"
    r"\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09bc\u09be-\u09c4\u09c7-\u09c8\u09cb-\u09cd\u09d7\u09e2-\u09e3\u0a01-\u0a03"
    r"\u0a3c\u0a3e-\u0a4f\u0a81-\u0a83\u0abc\u0abe-\u0acf\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd\u0c01-\u0c03"
    r"\u0c3e-\u0c56\u0d3e-\u0d44\u0d46-\u0d48\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd"
)
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_QUOTE_SHAPES = {"\u0091": "`", "\u2018": "`", "\u201b": "`", "\u2039": "`", "\u0092": "'", "\u2019": "'", "\u203a": "'"}
_QUOTE_SHAPES |= {c: "``" for c in "\u0093\u201c\u00ab"} | {c: "''" for c in "\u0094\u201d\u00bb"}
# Words that keep their period (any case). Those of the first list also give it up before a lone
# letter and one more character ("Co.o x" is "co." "o", "Mr.o x" is "mr.o").
_ABBREVIATIONS_1 = """
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri ala ariz calif colo conn ct dak fla ga
ind kan kans ky md mich minn mo mont neb nev okla penn tenn va vt wis wisc wyo inc co cos corp ltd plc rt bancorp bhd
assn univ intl sys tel est ext sq jr sr bros ed.d ph.d blvd rd esq etc al seq bldg
"""
_ABBREVIATIONS_2 = """
mr mrs ms dr drs prof profs sen sens rep reps atty attys lt col gen messrs gov govs adm rev maj sgt cpl pvt capt st ste
ave pres lieut hon brig cmdr comdr pfc spc supt supts det mt adj adv asst assoc ens insp mlle mme msgr sfc dept ft ph
wm jos cie cf treas vs alex invt elec natl a.k.a
"""
_CAPITAL_ABBREVIATIONS = "Az Ark Del Ill La Mass Miss Ore Pa Tex Wash"  # abbreviations only with a capital
_BEFORE_NUMBER = "no nos prop fig figs ca pp art op"  # abbreviations only before a number
_SENTENCE_STARTS = """
About According Additionally After An A As At But Earlier He Her Here However If In It Last Many More Mr. Ms. Now Once One
Other Our She Since So Some Such That The Then There These They This We When While What Yet You
"""
_FILE_EXTENSIONS = "bat bmp c cgi class cpp dll doc docx exe gif gz h htm html jar java jpeg jpg mov mp3 pdf php pl png ppt ps py sql tar txt wav x xml zip"
_ASSIMILATIONS = frozenset({"cannot", "gonna", "gotta", "wanna", "lemme", "gimme"})


def _char_class(predicate: Callable[[str], bool]) -> str:
    """Body of a regex character class with the Basic Multilingual Plane characters satisfying ``predicate``."""
    out, start = [], None
    for code in range(0x10001):
        inside = code < 0x10000 and not 0xD800 <= code < 0xE000 and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            out.append(f"\\u{start:04x}" + (f"-\\u{code - 1:04x}" if code - 1 > start else ""))
            start = None
    return "".join(out)


def _words(words: str, capital: bool = False) -> str:
    """Alternation of ``words``, longest first (Python takes the first alternative that matches), in any
    case, or with ``capital`` only with its first letter as written."""
    ordered = sorted(words.split(), key=len, reverse=True)
    if capital:
        return "|".join(f"{w[0]}(?i:{re.escape(w[1:])})" for w in ordered)
    return "(?i:" + "|".join(re.escape(w) for w in ordered) + ")"


def _quotes(token: str, left: bool) -> str:
    """The jar's LaTeX quotes: ASCII ones by position (``left``: before a letter or digit), the others by shape."""
    token = re.sub(r"&apos;|'", "`" if left else "'", token, flags=re.IGNORECASE)
    token = re.sub(r'&quot;|"', "``" if left else "''", token, flags=re.IGNORECASE)
    return "".join(_QUOTE_SHAPES.get(c, c) for c in token)


def _same(token: str) -> list[str]:
    return [token]


def _no_soft_hyphen(token: str) -> list[str]:
    return [token.replace("\u00ad", "") or "-"]


def _nbsp(token: str) -> list[str]:
    return [token.replace(" ", "\u00a0")]


def _ampersand(token: str) -> list[str]:
    return [re.sub("(?i)&amp;", "&", token)]


def _parentheses(token: str) -> list[str]:
    return [token.replace("(", "-LRB-").replace(")", "-RRB-")]


@dataclass(frozen=True)
class _Rule:
    """A lexer rule: alternative patterns (``context``: a trailing context, not consumed), ``emit`` maps the
    matched text to tokens, and the last ``pushback`` characters go back to the input."""

    patterns: tuple[str, ...]
    emit: Callable[[str], list[str]] = _same
    context: str | None = None
    pushback: int = 0


@dataclass(frozen=True)
class _Lexer:
    rules: tuple[tuple[re.Pattern, _Rule], ...]  # in priority order
    abbreviation: re.Pattern  # any word + period that may keep the period


@functools.cache
def _lexer() -> _Lexer:
    """The compiled rules, in the jar's priority order (built on first use, in about a second)."""
    newer_letter, newer_digit = re.compile(f"[{_NEWER_LETTERS}]"), re.compile(f"[{_NEWER_DIGITS}]")
    let = _char_class(lambda c: (c.isalpha() and not newer_letter.match(c)) or c in "\u1885\u1886")  # U+1885-6: letters then, marks now
    dig = _char_class(lambda c: c.isdecimal() and not newer_digit.match(c))
    L, D, LD = f"[{let}]", f"[{dig}]", f"[{let}{dig}]"
    letter = rf"(?:[{let}{_WORD_EXTRA}]|&(?i:[aeiou](?:acute|grave|uml));)"
    file_part = f"[{let}{_WORD_EXTRA}{dig}]"
    word = rf"{letter}(?:{letter}|{D})*(?:[.!?]{letter}(?:{letter}|{D})*)*"
    apos, apos_etc = r"(?:['\u0092\u2019]|&(?i:apos);)", r"(?:['\u0092\u2019\u0091\u2018\u201b]|&(?i:apos);)"
    spacenl = f"[{_SPACE}{_NEWLINE}]"
    clitic = rf"{apos}(?:[msdMSD]|(?i:re|ve|ll))"
    negation = rf"(?i:n){apos_etc}(?i:t)"
    thing_part = rf"(?:[dDoOlL]{apos_etc}{LD})?{LD}+"
    thing = rf"{thing_part}(?:[-_\u058a\u2010\u2011]{thing_part})*"
    acronym = r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:(?:canada|sino|korean|eu|japan|non)-u\.s|u\.s\.-(?:u\.k|u\.s\.s\.r)))"
    hyphenated = rf"[A-Za-z0-9][A-Za-z0-9.,\u00ad]*(?:-(?:{acronym}\.|[A-Za-z0-9\u00ad]+))+"
    all_caps_and = r"[A-Z]+(?:(?:[+&]|&(?i:amp);)[A-Z]+)+"
    name = r"[A-Za-z][A-Za-z0-9_:.-]*"
    sgml = rf"""<(?:[!?][A-Za-z-][^>\r\n]*|{name}(?: +(?:{name} *= *(?:'[^']*'|"[^"]*"|{name})|{name}))* */?|/{name}) *>"""
    abbreviations_1 = [_words(_ABBREVIATIONS_1), _words(_CAPITAL_ABBREVIATIONS, capital=True), "(?i:pp?t)[ye](?i:s)?"]
    abbreviations_2 = [_words(_ABBREVIATIONS_2), "(?i:m)[ft](?i:g)", acronym, "[A-Za-z]"]
    insentence = r"[,;:\u3001]"
    url_end = r'[^ \t\n\f\r"<>|.!?(){},-]'
    quote = r"`\u2018\u2019\u201a\u201b\u201c\u201d\u0091\u0092\u0093\u0094\u201e\u201f\u2039\u203a\u00ab\u00bb"

    rules = [
        # split words, programming languages, SGML tags, character entities
        _Rule((r"(?i:cannot|'twas)",), lambda t: [t[:-3]], pushback=3),
        _Rule((r"(?i:gonna|gotta|wanna|lemme|gimme|'tis)",), lambda t: [t[:-2]], pushback=2),
        _Rule((r"(?i:c\+\+|[cf]#)",)),
        _Rule((sgml,), _nbsp),
        _Rule((r"&(?i:md|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]",), lambda t: ["--"]),
        _Rule((r"&(?i:amp);",), lambda t: ["&"]),
        _Rule((r"&(?i:ht|tl|ur|lr|qc|ql|qr|odq|cdq|#[0-9]+);",)),
        # words, cut before a clitic or n't; words with an apostrophe inside
        _Rule((word,), _no_soft_hyphen, context=clitic),
        _Rule((r"[A-Za-z\u00ad]*[A-MO-Za-mo-z]\u00ad*",), _no_soft_hyphen, context=negation),
        _Rule((word,), _no_soft_hyphen),
        _Rule(
            (
                rf"{apos}(?i:n){apos}?",
                rf"[lLdDjJ]{apos}",
                rf"(?i:dunkin|somethin|ol){apos}",
                rf"{apos}(?i:em|till?|cause)",
                rf"[A-HJ-XZn]{apos_etc}{L}{{2,}}",
                rf"{apos}[2-9]0(?i:s)",
                rf"(?i:o){apos_etc}(?i:o)",
                rf"{L}+[aeiouyAEIOUY]{apos_etc}[aeiouA-Z]{L}*",
                r"(?i:cont'd\.?|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)",
            )
        ),
        _Rule((rf"(?i:y){apos}",), context=L),
        # URLs, e-mail addresses, Twitter names and hashtags
        _Rule((rf'(?i:https?)://[^ \t\n\f\r"<>|(){{}}]+{url_end}',)),
        _Rule(
            (
                rf'(?:(?i:www)\.(?:[^ \t\n\f\r"<>|.!?(){{}},]+\.)+[a-zA-Z]{{2,4}}|(?:[^ \t\n\f\r"`\'<>|.!?(){{}}\x2c-\x5f$]+\.)+(?i:com|net|org|edu))'
                rf'(?:/[^ \t\n\f\r"<>|()]+{url_end})?',
            )
        ),
        _Rule((r'(?:&(?i:lt);|<)?[a-zA-Z0-9][^ \t\n\f\r"<>|(){}\u00a0]*@(?:[^ \t\n\f\r"<>|(){}.\u00a0]+\.)*[^ \t\n\f\r"<>|(){}.\u00a0]+(?:&(?i:gt);|>)?',)),
        _Rule((r"@[a-zA-Z_][a-zA-Z_0-9]*", f"#{letter}+")),
        _Rule((clitic,), lambda t: [_quotes(t, False)], context="[^A-Za-z]"),
        _Rule((negation,), lambda t: [_quotes(t, False)]),
        # dates, numbers, fractions, currencies
        _Rule((rf"{D}{{1,2}}[-/]{D}{{1,2}}[-/]{D}{{2,4}}",)),
        _Rule((rf"[-+]?(?:{D}*(?:[.:,\u00ad\u066b\u066c]{D}+)+|{D}+)",), _no_soft_hyphen),
        _Rule((r"[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)",)),
        _Rule((rf"(?:{D}{{1,4}}[- \u00a0])?{D}{{1,4}}(?:\\?/|\u2044){D}{{1,4}}",), _nbsp),
        _Rule((r"[\u00bc\u00bd\u00be\u2153-\u215e]",), lambda t: [_FRACTIONS.get(t, t)]),
        _Rule((r"-(?i:rrb|lrb|rcb|lcb|rsb|lsb)-|(?i:c\.d\.s|pro-|anti-|s(?:&|&amp;)p-500|s(?:&|&amp;)ls)",), _ampersand),
        _Rule((rf"(?i:cap{apos}n|c{apos}est)",)),
        _Rule((r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}",)),
        _Rule((r"[A-Z]*\$|#",)),
        _Rule((r"[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",), lambda t: [_CURRENCY.get(t, t)]),
        # periods: a letter or acronym before a sentence start ("c" "." / "u.s." "."), abbreviations,
        # file names, a word before , ; :
        _Rule(
            (rf"(?:{acronym}|[A-Za-z])\.",),
            lambda t: [t[:-1] if len(t) == 2 else t],
            context=f"{spacenl}+(?:{_words(_SENTENCE_STARTS, capital=True)}|{sgml}){spacenl}",
            pushback=1,
        ),
        _Rule((rf"{_words(_BEFORE_NUMBER)}\.",), context=f"{spacenl}?[0-9]"),
        _Rule(tuple(rf"(?:{a})\." for a in abbreviations_1), context="(?s:..)"),
        _Rule(tuple(rf"(?:{a})\." for a in abbreviations_1 + abbreviations_2)),
        _Rule((acronym,), context=spacenl),
        _Rule((rf"{apos}[0-9][0-9]",), context=spacenl),
        _Rule((rf"{file_part}+(?:\.{file_part}+)*\.{_words(_FILE_EXTENSIONS)}",), context=f"{spacenl}|[.?!,]"),
        _Rule((rf"{word}\.",), _no_soft_hyphen, context=insentence),
        # phone numbers, double quotes, brackets, dashes, ellipses, punctuation, smileys
        _Rule(
            (
                r"(?:\([0-9]{2,3}\)[ \u00a0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \u00a0])?[0-9]{2,4}[- \u00a0])[0-9]{3,4}[- \u00a0]?[0-9]{3,5}",
                r"(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}",
            ),
            lambda t: _parentheses(_nbsp(t)[0]),
        ),
        _Rule((r'"|&(?i:quot);',), lambda t: [_quotes(t, True)], context="[A-Za-z0-9$]"),
        _Rule((r'"|&(?i:quot);',), lambda t: [_quotes(t, False)]),
        _Rule((r"\x7f",), lambda t: []),
        _Rule((r"<|&(?i:lt);",), lambda t: ["<"]),
        _Rule((r">|&(?i:gt);",), lambda t: [">"]),
        _Rule((r"[][(){}]",), lambda t: [_BRACKETS[t]]),
        _Rule((r"-+",), lambda t: ["--" if 3 <= len(t) <= 4 else t]),
        _Rule((r"\.{3,5}", r"(?:\.[ \u00a0]){2,4}\.", r"[\u0085\u2026]"), lambda t: ["..."]),
        _Rule(
            (
                r"@+",
                r"#+",
                r"_+",
                r"\*+",
                r"(?:\\\*){1,3}",
                insentence,
                r"[?!]+",
                r"[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]",
                r"=",
                r"/",
            )
        ),
        _Rule((r"[<>]?[:;=][-o*']?[()DPdpO\\{@|[\]]",), _parentheses, context="[^A-Za-z0-9]"),
        _Rule((r"[\^x=~<>]\.\[\^x=~<>]", r"[-\^x=~<>']_[-\^x=~<>']", r"\([-\^x=~<>'][_.]?[-\^x=~<>']\)"), _parentheses),
        # hyphenated words and other letter-digit runs, AT&T
        _Rule((rf"{hyphenated}\.",), _no_soft_hyphen, context=insentence),
        _Rule((hyphenated,), _no_soft_hyphen),
        _Rule((rf"(?:{thing})\.",), context=insentence),
        _Rule((thing,)),
        _Rule((rf"{all_caps_and}\.",), _ampersand, context=insentence),
        _Rule((all_caps_and,), _ampersand),
        # single quotes, symbols, white space (any other character is deleted)
        _Rule(("'",), lambda t: ["`"], context=r"[A-Za-z][^ \t\n\r\u00a0]"),
        _Rule((clitic,), lambda t: [_quotes(t, False)]),
        _Rule((apos, "''", f"[{quote}]{{1,2}}"), lambda t: [_quotes(t, False)]),
        _Rule(("<<|>>",)),
        _Rule((rf"[%&+~^|\\{_SYMBOLS}\u24b6-\u24cf]",)),
        _Rule((rf"[\x00{_SPACE}\u200b\u200e\u200f\ufeff]+", f"[{_NEWLINE}]", r"&(?i:nbsp);"), lambda t: []),
    ]
    compiled = []
    for rule in rules:
        for pattern in rule.patterns:
            context = f"(?=(?P<context>{rule.context}))" if rule.context else ""
            compiled.append((re.compile(f"(?P<main>{pattern}){context}"), rule))
    abbreviation = "|".join(f"(?:{a})" for a in [*abbreviations_1, *abbreviations_2, _words(_BEFORE_NUMBER)])
    return _Lexer(tuple(compiled), re.compile(rf"(?:{abbreviation})\."))


# White space as the jar skips it: from a space or a tab (no token starts with either) the whole run of
# spaces, or one line break. A URL may start with U+00A0 or another space: those are left to the rules.
_SKIP = re.compile(rf"[ \t][\x00{_SPACE}\u200b\u200e\u200f\ufeff]*|[{_NEWLINE}]")
# Shortcuts for the common cases, exact because no rule can do otherwise: ASCII letters before white space
# are a word; a period before white space is a period, and so is one after ASCII letters (then a word)
# unless they make an abbreviation. (Not before U+00A0 and the other spaces, which URLs and e-mail
# addresses may run across, nor before " .": ". . ." is an ellipsis.)
_PLAIN_WORD = re.compile(r"[A-Za-z]+(?=[ \t\n\r\f]|\Z)")
_PLAIN_PERIOD = re.compile(r"([A-Za-z]*)\.(?=[\t\n\r\f]| (?!\.)|\Z)")


def _plain_tokens(text: str, pos: int, abbreviation: re.Pattern) -> tuple[list[tuple[int, str]], int] | None:
    """The tokens at ``pos`` by the shortcuts and the position after them; None where the rules must decide."""
    match = _PLAIN_WORD.match(text, pos)
    if match is not None:
        return ([(pos, match.group())], match.end()) if match.group().lower() not in _ASSIMILATIONS else None
    match = _PLAIN_PERIOD.match(text, pos)
    if match is None or match.group(1).lower() in _ASSIMILATIONS or (match.group(1) and abbreviation.fullmatch(match.group())):
        return None
    return [(pos, match.group(1))] * bool(match.group(1)) + [(match.end() - 1, ".")], match.end()


def _lex(text: str) -> list[tuple[int, str]]:
    """``(start offset, token)`` of every token of ``text``, as the jar's lexer produces them (original case)."""
    lexer = _lexer()
    out: list[tuple[int, str]] = []
    pos = 0
    while pos < len(text):
        skip = _SKIP.match(text, pos)
        if skip is not None:
            pos = skip.end()
            continue
        plain = _plain_tokens(text, pos, lexer.abbreviation)
        if plain is not None:
            tokens, pos = plain
            out.extend(tokens)
            continue
        best, best_length = None, 0
        for pattern, rule in lexer.rules:
            match = pattern.match(text, pos)
            if match is not None:
                length = (match.end("context") if rule.context else match.end()) - pos
                if length > best_length:  # the longest match wins, the first rule among equals
                    best, best_length = (match.group("main"), rule), length
        if best is None:  # a character the jar does not know: deleted
            pos += 1
            continue
        main, rule = best
        out.extend((pos, token) for token in rule.emit(main))
        pos += len(main) - rule.pushback
    return out


def ptb_lines(captions: Sequence[str]) -> list[list[str]]:
    """Lowercased tokens of each caption as ``PTBTokenizer -preserveLines -lowerCase`` prints them.

    The captions are lexed as one text, one per line, as the Java run over all captions does (a caption
    ending in e.g. ``vitamin C.`` tokenises differently before a caption starting with ``The``); line
    breaks inside a caption become spaces.
    """
    text = "\n".join(LINE_BREAKS.sub(" ", caption) for caption in captions) + "\n"
    lines: list[list[str]] = [[] for _ in captions]
    line, line_end = 0, len(captions[0]) if captions else 0
    for start, token in _lex(text):
        while start > line_end:
            line += 1
            line_end += len(captions[line]) + 1
        lines[line].append(token.lower())
    return lines
