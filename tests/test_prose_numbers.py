"""Numbers in the notebooks' prose come from the reader's run, or are reviewed.

A number that a notebook's markdown states about its own results must be the
reader's number: quoted with a MyST-NB glue role (``{glue:text}`name```), or
checked by an assert in the notebook. A sentence passes when every number in it

- sits inside a glue role (glued numbers are not counted at all),
- appears as a literal in the notebook's own code cells: a setting the code
  uses (``pick(full=10000, fast=2000)``, ``lam=1.0``) or a threshold one of its
  asserts checks (``assert ratio > 4``), or
- is a token the reviewed allow-list accepts everywhere (a year, an
  architecture such as 784-1000-500-250-30, an image size such as 28×28).

Spelled-out quantities in the phrases results are stated in ("about ten
times", "seven in ten", "several-fold", "a few percent") count as numbers too;
a vague one ("several", "a few", "many") is backed by nothing and must be
reviewed. Everything else must be listed, sentence by sentence and with a
reason, in ``tests/prose_numbers_allowed.txt``: published numbers with their
citation, definitions of a protocol or a data set, section numbers, worked
examples. The list is meant to stay short; a stale entry fails too.

Display math, inline math, code and directive options are not prose and are
not read; numbers in math are definitions, not results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = Path(__file__).with_name("prose_numbers_allowed.txt")

WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "thirty": "30", "fifty": "50", "hundred": "100",
    "a hundred": "100", "thousand": "1000", "a thousand": "1000", "half": "0.5",
    "a third": "0.33", "a quarter": "0.25", "twice": "2",
}  # fmt: skip
_WORD = "|".join(sorted(WORDS, key=len, reverse=True))
_VAGUE = "several|a few|many|some"
# phrases in which prose states a measured result with words instead of digits
RESULT_PHRASES = [
    rf"\b(?:about|roughly|nearly|almost|around|some|only|just)\s+(?:{_WORD})\b(?!-)",
    rf"\b(?:{_WORD}|{_VAGUE})\s+times\b",
    rf"\b(?:{_WORD})\s+(?:in|out of)\s+(?:{_WORD})\b",
    r"\b\w+-fold\b",
    rf"\b(?:{_WORD}|{_VAGUE}|a|of a)\s+percent\b",
]
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def _allowed():
    """(token patterns, {(path, sentence substring): reason}) from the reviewed list."""
    tokens, sentences = [], {}
    for line in ALLOWED.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry, _, reason = line.partition(" | ")
        if not reason.strip():
            raise ValueError(f"allow-list entry without a reason after ' | ': {line!r}")
        kind, _, rest = entry.partition(": ")
        if kind == "token":
            tokens.append(re.compile(rest.strip()))
        elif kind == "sentence":
            path, _, text = rest.partition(" :: ")
            sentences[(path.strip(), text.strip())] = reason.strip()
        else:
            raise ValueError(
                f"allow-list entry must start with 'token: ' or 'sentence: ': {line!r}"
            )
    return tokens, sentences


def code_literals(cells, asserts_only: bool = False) -> set[str]:
    """Number literals in the code cells, normalised (1_000 -> 1000, 0.50 -> 0.5).

    With ``asserts_only``, only those on lines that assert something.
    """
    literals = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            if asserts_only and "assert" not in line:
                continue
            for match in re.finditer(r"(?<![\w.])\d[\d_]*(?:\.\d+)?", line):
                literals.add(_normal(match.group().replace("_", "")))
    return literals


def _normal(number: str) -> str:
    number = number.replace(",", "")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number


def prose(markdown: str) -> str:
    """The markdown with math, code, roles, labels and directive options blanked out."""
    text = re.sub(r"^(`{3,}|~{3,})\s*(\{(?:literalinclude|code-cell|math|code-block|code)\}"
                  r"|[a-z0-9]*\s*$).*?^\1\s*$", " ", markdown, flags=re.S | re.M)  # fmt: skip
    text = re.sub(r"^(`{3,})\{[^}]*\}.*$", " ", text, flags=re.M)  # directive lines
    text = re.sub(r"^`{3,}\s*$", " ", text, flags=re.M)
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$]+\$", " MATH ", text)
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", " GLUED ", text)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ROLE ", text)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"^\([\w-]+\)=\s*$", " ", text, flags=re.M)
    text = re.sub(r"^:[\w-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^#+\s*", "", text, flags=re.M)
    return text


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z*(])|\n\s*\n|\n\s*(?:[-*]|\d+\.)\s+|\|", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def unbacked(sentence: str, literals: set[str], tokens, asserted: set[str]) -> list[str]:
    """The numbers of a sentence that nothing backs.

    Digits are backed by any literal of the notebook's code (a setting or a threshold);
    a result stated in words ("at least four times") only by a literal on an assert line.
    """
    masked = sentence
    for pattern in tokens:
        masked = pattern.sub(" ", masked)
    found = {_normal(n) for n in NUMBER.findall(masked)} - literals
    for phrase in RESULT_PHRASES:
        for match in re.finditer(phrase, masked, flags=re.I):
            words = re.findall(rf"\b(?:{_WORD})\b", match.group().lower())
            found |= {WORDS[w] for w in words} - asserted if words else {match.group()}
    return sorted(found)


def flagged(paths=None):
    """[(notebook path, sentence, unbacked numbers)] over the book's notebooks."""
    tokens, _ = _allowed()
    out = []
    for path in paths or sorted(ROOT.glob("book/**/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        literals, asserted = code_literals(cells), code_literals(cells, asserts_only=True)
        for cell in cells:
            if cell["cell_type"] != "markdown":
                continue
            for sentence in sentences(prose("".join(cell["source"]))):
                numbers = unbacked(sentence, literals, tokens, asserted)
                if numbers:
                    out.append((path.relative_to(ROOT).as_posix(), sentence, numbers))
    return out


def _reviewed(path, sentence, allowed_sentences):
    return [key for key in allowed_sentences if key[0] == path and key[1] in sentence]


def test_every_number_in_notebook_prose_is_glued_asserted_or_reviewed():
    _, allowed_sentences = _allowed()
    bad = [
        f"{path}: {numbers} in: {sentence}"
        for path, sentence, numbers in flagged()
        if not _reviewed(path, sentence, allowed_sentences)
    ]
    assert not bad, (
        "numbers in prose that the reader's run does not produce; glue them "
        "(companion.plot.glue + {glue:text}), assert them in a code cell, drop them, or "
        "add a reviewed entry to tests/prose_numbers_allowed.txt:\n" + "\n".join(bad)
    )


def test_the_allow_list_has_no_stale_entries():
    _, allowed_sentences = _allowed()
    hits = {
        key
        for path, sentence, _ in flagged()
        for key in _reviewed(path, sentence, allowed_sentences)
    }
    stale = sorted(set(allowed_sentences) - hits)
    assert not stale, f"allow-list entries that match no flagged sentence; remove them: {stale}"


NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "source": ["ratio = error_a / error_b  # 10 images\n",
                                         "assert ratio > 4\n"]},
        {"cell_type": "markdown", "source": [
            "The deep model's error is {glue:text}`ratio:.2f` of PCA's, at least four times\n",
            "smaller. On the two CPU cores of the build it took 42 seconds.\n\n",
            "- About seven in ten units are dead, and it trains about ten times faster.\n",
            "- Its Jacobian shrinks several-fold. A 784-1000-500-250-30 network, 28×28 images,\n",
            "  in 2006; the loss is $\\frac{1}{2} x^2 + 3.5$ and `lr=0.003` here.\n",
        ]},
    ]
}  # fmt: skip


def test_the_scanner_flags_typed_results_and_passes_backed_ones(tmp_path):
    path = tmp_path / "book" / "demo.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps(NOTEBOOK))
    literals = code_literals(NOTEBOOK["cells"])
    asserted = code_literals(NOTEBOOK["cells"], asserts_only=True)
    tokens, _ = _allowed()
    found = {
        s: unbacked(s, literals, tokens, asserted)
        for s in sentences(prose("".join(NOTEBOOK["cells"][1]["source"])))
    }
    flagged_numbers = sorted(n for numbers in found.values() for n in numbers)
    # glued ratio, asserted 4, year, architecture, image size, math and code: all pass
    assert flagged_numbers == sorted(["42", "7", "10", "several-fold"]), found


def test_glue_writes_what_myst_nb_reads():
    """companion.plot.glue writes MyST-NB's display bundle without needing MyST-NB."""
    from unittest import mock

    myst_glue = pytest.importorskip("myst_nb.ext.glue")
    from companion.plot import glue

    calls = []
    with (
        mock.patch("IPython.display.display", lambda *a, **k: calls.append((a, k))),
        mock.patch.object(myst_glue, "ipy_display", lambda *a, **k: calls.append((a, k))),
    ):
        glue("cae_ratio", 0.123456)
        myst_glue.glue("cae_ratio", 0.123456, display=False)
    assert calls[0] == calls[1]
    calls.clear()
    with mock.patch("IPython.display.display", lambda *a, **k: calls.append((a, k))):
        glue("cae_ratio", np.float64(0.25))  # numpy's repr is "np.float64(0.25)"
        glue("cae_ratio", torch.tensor([0.25]))
    for (bundle,), _ in calls:
        assert bundle["application/papermill.record/text/plain"] == "0.25"
    with pytest.raises(ValueError, match="must be an identifier"):
        glue("cae ratio", 1.0)
