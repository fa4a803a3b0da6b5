"""Hypothesis strategies over architectures of a search space.

`space.sample` only needs an object with `suggest_int` and `suggest_categorical`; feeding it
hypothesis draws explores the space the way Optuna would, with shrinking on failure.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace


class DrawingTrial:
    """A stand-in for `optuna.trial.Trial` whose suggestions come from hypothesis."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.params[name] = self.draw(st.integers(low, high), label=name)
        return self.params[name]

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.params[name] = self.draw(st.sampled_from(list(choices)), label=name)
        return self.params[name]


@st.composite
def archs(draw: Any, space: SearchSpace) -> Arch:
    return space.sample(DrawingTrial(draw))


@st.composite
def archs_with_params(draw: Any, space: SearchSpace) -> tuple[Arch, dict[str, Any]]:
    trial = DrawingTrial(draw)
    return space.sample(trial), trial.params
