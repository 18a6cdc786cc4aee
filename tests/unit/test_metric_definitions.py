"""Every metric the analytics answer is defined once, and the README shows that definition."""

from __future__ import annotations

from pathlib import Path

from analytics.definitions import METRICS
from queries.models import MetricsRow

README = Path(__file__).parents[2] / "README.md"


def test_each_figure_of_a_row_is_a_defined_metric_and_each_metric_a_figure() -> None:
    names = [m.name for m in METRICS]
    assert len(set(names)) == len(names)
    assert set(MetricsRow.model_fields) - {"bucket_start", "group"} == set(names)


def test_the_readme_states_each_definition_at_its_version() -> None:
    text = README.read_text()
    for m in METRICS:
        assert f"| `{m.name}` | {m.version} | {m.per} | {m.unit} | {m.definition} |" in text
