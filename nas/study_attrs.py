"""What a study records about itself: the user attributes of a search and of its companions.

A search study records how it was configured and what its trials were measured with (the
latency table's metadata, the space, the proxy recipe, the dataset); its companion studies
(``<study>.confirm`` and ``<study>.final``) name the search they belong to, and the final one
records the recipe it trained with. `write_study_attrs` is the only writer and `StudyAttrs.of`
the only reader, as `nas.trials` is for trials, so each attribute's name and shape is spelled in
one place, and studies written by earlier versions (a ``.final`` study that records its dataset
by name only) read the same way as new ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from nas.config import FIELD_NAMES, SearchConfig

if TYPE_CHECKING:
    from nas.evaluators.datasets.base import Dataset


@dataclass(frozen=True)
class DatasetInfo:
    """The data a study's networks were trained on: its name, and the shape of its images and
    how many classes it has where they were recorded."""

    name: str | None = None
    input_shape: tuple[int, ...] | None = None
    """(channels, height, width) of the images as stored, before any proxy resizing."""
    num_classes: int | None = None

    @classmethod
    def of(cls, data: Dataset) -> DatasetInfo:
        return cls(data.name, tuple(data.input_shape), data.num_classes)

    @classmethod
    def parse(cls, value: Any) -> DatasetInfo | None:
        """A stored value: the mapping a search records, or the bare name that ``.final``
        studies of earlier versions record; None for anything else."""
        if isinstance(value, str):
            return cls(name=value)
        if not isinstance(value, Mapping):
            return None
        shape, classes = value.get("input_shape"), value.get("num_classes")
        return cls(
            name=value.get("name"),
            input_shape=tuple(int(side) for side in shape) if shape else None,
            num_classes=int(classes) if classes is not None else None,
        )

    @property
    def channels(self) -> int | None:
        return int(self.input_shape[0]) if self.input_shape else None

    def to_dict(self) -> dict[str, Any]:
        """The stored form, as pareto.json and JSON exports show it."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "num_classes": self.num_classes,
        }


@dataclass(frozen=True)
class StudyAttrs:
    """Every user attribute a study records; None where it was not recorded.

    A search study holds the first six; a companion holds its back-pointer, and the final one
    also `identity` (the final recipe and the number of training images) and `dataset`.
    """

    config: dict[str, Any] | None = None
    """`SearchConfig.to_dict()`, the storage password masked."""
    identity: dict[str, Any] | None = None
    """What a resume must not change: `SearchConfig.identity()` on a search study; the final
    recipe and training-image count (``recipe``, ``train_images``) on a ``.final`` study."""
    latency_table: dict[str, Any] | None = None
    """The metadata of the latency table the search priced with, as the table file holds it."""
    space: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None
    """The proxy recipe the search trained its candidates with (`Recipe.to_dict()`)."""
    dataset: DatasetInfo | None = None
    confirms_study: str | None = None
    """On a ``.confirm`` study: the search study whose candidates it trains again."""
    finalizes_study: str | None = None
    """On a ``.final`` study: the search study whose picks it trains as a user would."""

    @classmethod
    def of(cls, study: optuna.Study) -> StudyAttrs:
        """The record of `study`; attributes this version does not know are left out."""
        return cls.from_dict(study.user_attrs)

    @classmethod
    def from_dict(cls, attrs: Mapping[str, Any]) -> StudyAttrs:
        values = {key: value for key, value in attrs.items() if key in _NAMES}
        if "dataset" in values:
            values["dataset"] = DatasetInfo.parse(values["dataset"])
        return cls(**values)

    @property
    def search_study(self) -> str | None:
        """The search a companion study belongs to; None for a search study."""
        return self.confirms_study or self.finalizes_study

    @property
    def is_companion(self) -> bool:
        """Whether the study holds another study's confirm or final runs."""
        return self.search_study is not None

    @property
    def target(self) -> str | None:
        """The latency target the search priced on, as configured."""
        return (self.config or {}).get("target")

    def search_config(self) -> SearchConfig | None:
        """The recorded configuration as a `SearchConfig`; fields this version does not know
        are left out. None when the study records none (it was not made by `nas search`)."""
        if not self.config:
            return None
        return SearchConfig(
            **{key: value for key, value in self.config.items() if key in FIELD_NAMES}
        )

    def inherit(self, search: StudyAttrs) -> StudyAttrs:
        """A companion's record with what it does not record itself taken from its search's:
        the configuration, the dataset's shape and classes, the table and the space. Its own
        identity and recipe stay its own."""
        dataset = self.dataset
        if search.dataset is not None and (dataset is None or dataset.name == search.dataset.name):
            dataset = search.dataset
        return dataclasses.replace(
            self,
            config=self.config or search.config,
            latency_table=self.latency_table or search.latency_table,
            space=self.space or search.space,
            dataset=dataset,
        )


_NAMES = frozenset(field.name for field in dataclasses.fields(StudyAttrs))


def write_study_attrs(study: optuna.Study, **values: Any) -> None:
    """Record exactly these attributes on `study` (None is recorded as null)."""
    unknown = set(values) - _NAMES
    if unknown:
        raise TypeError(f"not study attributes: {', '.join(sorted(unknown))}")
    for key, value in values.items():
        study.set_user_attr(key, value.to_dict() if isinstance(value, DatasetInfo) else value)


def search_attrs(study: optuna.Study) -> StudyAttrs:
    """The record of `study`, and for a companion study the search's configuration and data
    besides its own (`StudyAttrs.inherit`), so that a ``.final`` study's trials export with
    their search's data and settings. A companion whose search is gone keeps what it records."""
    attrs = StudyAttrs.of(study)
    name = attrs.search_study
    if name is None or name not in optuna.get_all_study_names(study._storage):
        return attrs
    search = optuna.load_study(study_name=name, storage=study._storage)
    return attrs.inherit(StudyAttrs.of(search))
