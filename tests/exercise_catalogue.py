"""The tests every exercise catalogue runs (tests/test_exercises*.py).

A test module lists, per exercise, CATALOGUE[name] = (check, answer key, shipped stub, a body that forgets
`return`, {mistake: (a student's answer, a word its hint must contain)}) and declares
`class TestCatalogue(CatalogueTests): CATALOGUE = CATALOGUE`; conftest.py parametrizes the methods by `name`
(and `mistake`). The answer key must be the one in labkit/exercises/answers/<module>.py.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from labkit import exercises
from labkit.exercises import Hint, NotAttempted

# A nudge or a hint reads as words: no operators, brackets, code names or dotted names.
CODE_OR_FORMULA = re.compile(r"[=()*^/·×+−\[\]`_]|\bdef\b|\w\.\w|\d\s*[-+]\s*\d")


def answer_key(check) -> dict:
    """The KEY of the answers module behind `check`."""
    return importlib.import_module(f"labkit.exercises.answers.{check.exercise.module}").KEY


class CatalogueTests:
    """Subclass as TestCatalogue with CATALOGUE set (see the module docstring)."""

    CATALOGUE: dict = {}

    def test_the_answer_key_passes_and_is_the_key(self, name):
        check, answer, *_ = self.CATALOGUE[name]
        assert "passed" in check(answer)
        assert answer_key(check)[check.exercise.key] is answer

    def test_the_shipped_stub_is_not_attempted(self, name, capsys):
        check, _, stub, _, _ = self.CATALOGUE[name]
        message = check(stub)
        assert "not attempted" in message and message in capsys.readouterr().out

    def test_a_body_that_forgets_return_is_told_so(self, name):
        check, _, _, forgot, _ = self.CATALOGUE[name]
        with pytest.raises(Hint, match="returned nothing.*forget `return`"):
            check(forgot)

    def test_every_exercise_has_at_least_three_catalogued_mistakes(self, name):
        assert len(self.CATALOGUE[name][4]) >= 3

    def test_each_catalogued_mistake_gets_a_hint_that_names_it(self, name, mistake):
        check, *_, mistakes = self.CATALOGUE[name]
        answer, word = mistakes[mistake]
        with pytest.raises(Hint) as raised:
            check(answer)
        assert word in str(raised.value), str(raised.value)
        assert not isinstance(raised.value, NotAttempted)

    def test_not_attempted_messages_and_every_hint_level_are_words_not_code(self, name):
        check, _, stub, *_ = self.CATALOGUE[name]
        ex = check.exercise
        assert len(ex.hints) >= 3, "a nudge and at least two stronger hints"
        for level, text in enumerate(ex.hints, 1):
            assert not CODE_OR_FORMULA.search(text), f"hint {level} of {ex.key} reads like code or a formula: {text}"
        message = check(stub).replace(exercises.MORE, "")
        assert not CODE_OR_FORMULA.search(message.split(": not attempted yet.")[1]), message

    def test_every_key_is_declared_and_has_the_stubs_signature(self):
        checks = {check.exercise.module: check for check, *_ in self.CATALOGUE.values()}
        for module, check in checks.items():
            declared = {ex.key for ex in exercises.exercises_of(f"labkit.exercises.{module}")}
            assert declared == set(answer_key(check)), module
        for name, (_, answer, stub, *_) in self.CATALOGUE.items():
            assert inspect.signature(answer) == inspect.signature(stub), name
