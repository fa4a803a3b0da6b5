"""A surrogate of accuracy over every trial a study holds (``--sampler surrogate``).

A single short training is noisy: two trainings of one network can swap places with its
neighbours. So instead of trusting each trial's own number, one model is fitted on all of them:
every searched candidate and baseline at the furthest epoch it reached (a candidate stopped early
or not promoted counts at its lower fidelity), every seed of it, and the confirm runs where the
study has them. It predicts the accuracy a network would reach at the full number of epochs, with
an uncertainty, from the network's encoding (`describe`) and its free statistics (multiply-adds,
parameters, latency), which every candidate has before it trains.

The model is scikit-learn's: a Bayesian linear fit on the free statistics carries the trend that
bigger networks are more accurate, and a Gaussian process over the whole encoding models what is
left, with its kernel's scale and noise fitted by marginal likelihood on at most `HYPER_POINTS`
observations, then held fixed for an exact fit on all of them, so a study of thousands of trials
costs one Cholesky factorisation per proposal rather than hundreds. Before enough training to fit
anything (`MIN_OBSERVATIONS`), the prior is the free statistics alone (`prior_score`): at equal
latency, a network that computes more is expected to be more accurate, as FBNetV3 pretrains its
predictor on FLOPs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction import DictVectorizer
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import StandardScaler

from nas.search_spaces.arch import Arch
from nas.trials import TrialAttrs

MIN_OBSERVATIONS = 3
"""Fewer trained observations and the prior (`prior_score`) ranks candidates alone."""
HYPER_POINTS = 300
"""Most observations the kernel's hyperparameters are fitted on (a seeded random subset beyond);
the exact fit with those hyperparameters then takes every observation."""


@dataclass(frozen=True)
class Candidate:
    """A network and the statistics it has before training."""

    arch: Arch
    mflops: float
    params: int
    latency_ms: float


@dataclass(frozen=True)
class Observation:
    """One training of a network: the accuracy it reached after `epochs`."""

    candidate: Candidate
    epochs: int
    accuracy: float
    train_seconds: float | None = None


def observations(
    trials: Iterable[FrozenTrial], confirms: Iterable[FrozenTrial] = ()
) -> list[Observation]:
    """Every training a study's `trials` hold (trained, stopped early or not promoted, baselines
    included) and every confirm run in `confirms` (the companion study, `nas.confirm`), each at
    the last epoch it reached. A duplicate reuses its twin's training and adds nothing."""
    found: list[Observation] = []
    costs: dict[int, Candidate] = {}
    for trial in trials:
        attrs = TrialAttrs.of(trial)
        candidate = candidate_of(attrs)
        if candidate is None:
            continue
        costs[trial.number] = candidate
        observed = _observed(attrs, candidate)
        if observed is not None:
            found.append(observed)
    for trial in confirms:
        attrs = TrialAttrs.of(trial)
        candidate = costs.get(attrs.confirms) if attrs.confirms is not None else None
        observed = _observed(attrs, candidate) if candidate is not None else None
        if observed is not None:
            found.append(observed)
    return found


def candidate_of(attrs: TrialAttrs) -> Candidate | None:
    """The candidate a trial trained, or None where the trial was never priced."""
    if attrs.arch is None or attrs.mflops is None or attrs.params is None:
        return None
    if attrs.latency_ms is None:
        return None
    return Candidate(Arch.from_string(attrs.arch), attrs.mflops, attrs.params, attrs.latency_ms)


def _observed(attrs: TrialAttrs, candidate: Candidate) -> Observation | None:
    if attrs.outcome is None or not attrs.outcome.counts or attrs.accuracy is None:
        return None
    curve = attrs.curve or []
    epochs = int(curve[-1].get("epoch", len(curve))) if curve else 1
    return Observation(candidate, max(epochs, 1), attrs.accuracy, attrs.train_seconds)


def describe(arch: Arch) -> dict[str, Any]:
    """The encoding: every field of every block that is an operator (identities are none), by
    stage and place in it, plus each stage's depth. Text fields (kind, activation) become
    indicator features (`DictVectorizer`); absent blocks are absent features, read as zero."""
    features: dict[str, Any] = {}
    in_channels = arch.stem.channels
    for s, stage in enumerate(arch.stages):
        depth = 0
        for block in stage:
            if block.is_identity(in_channels):
                continue
            where = f"s{s}.b{depth}"
            features[f"{where}.kind"] = block.kind_name
            for field in dataclasses.fields(block):  # type: ignore[arg-type]
                value = getattr(block, field.name)
                if isinstance(value, (bool, int, float)):
                    features[f"{where}.{field.name}"] = float(value)
                elif isinstance(value, str):
                    features[f"{where}.{field.name}"] = value
            in_channels = block.out_channels
            depth += 1
        features[f"s{s}.depth"] = float(depth)
    return features


def free_statistics(candidate: Candidate, epochs: int) -> list[float]:
    """What predicts accuracy before any training: size in multiply-adds and parameters (on a
    log scale), latency, and the fidelity the accuracy is asked at."""
    return [
        math.log(max(candidate.mflops, 1e-6)),
        math.log(max(candidate.params, 1)),
        candidate.latency_ms,
        math.log(max(epochs, 1)),
    ]


def prior_score(candidates: Sequence[Candidate]) -> np.ndarray:
    """The ranking before any training: standardised log multiply-adds plus standardised log
    parameters (higher: expected more accurate)."""
    if not candidates:
        return np.zeros(0)
    size = np.array(
        [[math.log(max(c.mflops, 1e-6)), math.log(max(c.params, 1))] for c in candidates]
    )
    spread = size.std(axis=0)
    spread[spread == 0] = 1.0
    return ((size - size.mean(axis=0)) / spread).sum(axis=1)


class Surrogate:
    """Accuracy at `epochs` with its uncertainty, fitted on `Observation`s.

    The encoding's vocabulary and scale are fitted on the observations together with the
    candidates to be asked about (`fit`'s `ask`), so a choice no trained network made is a
    feature of its own, and such a candidate reads as far from the data.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.trend = BayesianRidge()
        self.trend_scale = StandardScaler()
        self.vectorizer = DictVectorizer(sparse=False)
        self.scale = StandardScaler()
        self.process: GaussianProcessRegressor | None = None
        self.noise = 0.0
        """The fitted noise variance of one training, in the residuals' standard units."""
        self.residual_scale = 1.0
        self.epochs = 1
        """The fidelity predictions are made at: the most epochs any observation reached."""

    @property
    def fitted(self) -> bool:
        return self.process is not None

    def fit(
        self,
        observed: Sequence[Observation],
        ask: Sequence[Candidate] = (),
        kernel: Kernel | None = None,
    ) -> Surrogate:
        """Fit on `observed` (a no-op below `MIN_OBSERVATIONS`: `fitted` stays False).

        `kernel`, a fitted `kernel` of an earlier fit on much the same evidence, is used as it
        is: only the exact fit is made, not the search for its scale and noise.
        """
        if len(observed) < MIN_OBSERVATIONS:
            return self
        self.epochs = max(o.epochs for o in observed)
        accuracy = np.array([o.accuracy for o in observed])
        free = np.array([free_statistics(o.candidate, o.epochs) for o in observed])
        self.trend.fit(self.trend_scale.fit_transform(free), accuracy)
        residual = accuracy - self.trend.predict(self.trend_scale.transform(free))
        self.residual_scale = float(residual.std()) or 1.0
        target = residual / self.residual_scale
        self.vectorizer.fit([describe(c.arch) for c in [*(o.candidate for o in observed), *ask]])
        inputs = self._inputs([o.candidate for o in observed], [o.epochs for o in observed])
        self.scale.fit(np.vstack([inputs, self._inputs(ask, [self.epochs] * len(ask))]))
        inputs = self.scale.transform(inputs)
        self.process = self._fit_process(inputs, target, kernel)
        return self

    @property
    def kernel(self) -> Kernel | None:
        """The kernel with the scale and noise this fit found (None before a fit)."""
        return None if self.process is None else self.process.kernel_

    def predict(self, candidates: Sequence[Candidate]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the accuracy each candidate would reach at `epochs`
        (the deviation of its true mean, the noise of one training left out)."""
        assert self.process is not None, "fit the surrogate on enough observations first"
        if not candidates:
            return np.zeros(0), np.zeros(0)
        epochs = [self.epochs] * len(candidates)
        free = np.array([free_statistics(c, e) for c, e in zip(candidates, epochs)])
        trend = self.trend.predict(self.trend_scale.transform(free))
        inputs = self.scale.transform(self._inputs(candidates, epochs))
        mean, std = self.process.predict(inputs, return_std=True)
        latent = np.sqrt(np.maximum(std**2 - self.noise, 1e-12))
        return trend + self.residual_scale * mean, self.residual_scale * latent

    def _inputs(self, candidates: Sequence[Candidate], epochs: Sequence[int]) -> np.ndarray:
        width = len(self.vectorizer.feature_names_) + 4
        if not candidates:
            return np.zeros((0, width))
        encoded = self.vectorizer.transform([describe(c.arch) for c in candidates])
        free = np.array([free_statistics(c, e) for c, e in zip(candidates, epochs)])
        return np.hstack([encoded, free])

    def _fit_process(
        self, inputs: np.ndarray, target: np.ndarray, kernel: Kernel | None
    ) -> GaussianProcessRegressor:
        """Hyperparameters by marginal likelihood on a subset, then an exact fit on all."""
        if kernel is not None:
            self.noise = float(kernel.k2.noise_level)
            return GaussianProcessRegressor(kernel, optimizer=None).fit(inputs, target)
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=math.sqrt(inputs.shape[1]), length_scale_bounds=(1e-1, 1e3), nu=2.5
        ) + WhiteKernel(0.5, (1e-4, 2.0))
        rng = np.random.default_rng(self.seed)
        subset = (
            rng.choice(len(target), HYPER_POINTS, replace=False)
            if len(target) > HYPER_POINTS
            else np.arange(len(target))
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tuned = GaussianProcessRegressor(kernel, random_state=self.seed).fit(
                inputs[subset], target[subset]
            )
        self.noise = float(tuned.kernel_.k2.noise_level)
        if len(subset) == len(target):
            return tuned
        return GaussianProcessRegressor(tuned.kernel_, optimizer=None).fit(inputs, target)
