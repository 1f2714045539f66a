"""Each sampler's distribution and seed reproducibility."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import uuid

import pytest

from simulacra import samplers
from simulacra.errors import UsageError


def draws(sampler, n=2000, seed=1):
    rng = random.Random(seed)
    return [sampler(rng, i) for i in range(n)]


def test_same_seed_same_values_other_seed_other_values():
    for sampler in (samplers.faker("name"), samplers.uniform(0, 1), samplers.uuid4(),
                    samplers.date("2020-01-01", "2020-12-31")):
        assert draws(sampler, 50, seed=7) == draws(sampler, 50, seed=7)
        assert draws(sampler, 50, seed=7) != draws(sampler, 50, seed=8)


def test_faker_names_are_varied_and_locale_aware():
    names = draws(samplers.faker("name"), 200)
    assert len(set(names)) > 180
    assert all(isinstance(n, str) and " " in n for n in names[:20])
    assert draws(samplers.faker("city", locale="de_DE"), 5) != draws(samplers.faker("city"), 5)
    with pytest.raises(UsageError, match="no provider 'nonsense'"):
        samplers.faker("nonsense")


def test_category_weights_are_respected():
    values = draws(samplers.category({"basic": 0.8, "pro": 0.2}), 4000)
    share = values.count("basic") / len(values)
    assert 0.77 < share < 0.83


def test_numeric_distributions():
    uni = draws(samplers.uniform(10, 20, decimals=2))
    assert min(uni) >= 10 and max(uni) <= 20 and 14.7 < statistics.mean(uni) < 15.3
    norm = draws(samplers.normal(100, 15, minimum=0))
    assert 99 < statistics.mean(norm) < 101 and 14 < statistics.stdev(norm) < 16
    logn = draws(samplers.lognormal(0, 0.5, decimals=None))
    assert min(logn) > 0 and 0.95 < statistics.median(logn) < 1.05
    ints = draws(samplers.integer(1, 6))
    assert set(ints) == {1, 2, 3, 4, 5, 6}
    assert draws(samplers.sequence(1000, 5), 3) == [1000, 1005, 1010]


def test_uuid_date_datetime_and_column(tmp_path):
    assert all(uuid.UUID(u).version == 4 for u in draws(samplers.uuid4(), 20))
    days = [dt.date.fromisoformat(d) for d in draws(samplers.date("2024-01-01", "2024-01-31"))]
    assert min(days) == dt.date(2024, 1, 1) and max(days) == dt.date(2024, 1, 31)
    moments = draws(samplers.datetime("2024-01-01T00:00:00", "2024-01-02T00:00:00"), 50)
    assert all(m.startswith("2024-01-0") for m in moments)
    seed = tmp_path / "cities.csv"
    seed.write_text("name,country\nLima,PE\nOslo,NO\nPune,IN\n")
    assert set(draws(samplers.column(str(seed), "name"), 200)) == {"Lima", "Oslo", "Pune"}
    with pytest.raises(UsageError, match="no column 'town'"):
        samplers.column(str(seed), "town")


def test_job_specs_build_samplers_and_refuse_nonsense():
    assert samplers.from_spec("x", {"integer": [1, 3]}).kind == "integer"
    assert samplers.from_spec("x", {"normal": {"mean": 1, "std": 2}}).kind == "normal"
    assert samplers.from_spec("x", {"faker": "company", "locale": "fr_FR"}).kind == "faker:company"
    with pytest.raises(UsageError, match="needs exactly one of"):
        samplers.from_spec("x", {"gaussian": [1, 2]})
    with pytest.raises(UsageError, match="malformed"):
        samplers.from_spec("x", {"uniform": [1]})


def test_lines_and_context_samplers_draw_from_a_file(tmp_path):
    (tmp_path / "p.txt").write_text("a nurse in Oslo\n\n  a farmer in Peru  \n")
    (tmp_path / "p.csv").write_text("persona,age\na pilot,40\na chef,31\n")
    assert set(draws(samplers.lines(str(tmp_path / "p.txt")), 100)) == {
        "a nurse in Oslo", "a farmer in Peru"}
    assert set(draws(samplers.context_sampler(f"{tmp_path}/p.csv:persona"), 100)) == {
        "a pilot", "a chef"}
    spec = samplers.from_spec("context", {"lines": str(tmp_path / "p.txt")})
    assert draws(spec, 20, seed=4) == draws(samplers.lines(str(tmp_path / "p.txt")), 20, seed=4)
