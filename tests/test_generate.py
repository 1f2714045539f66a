"""Generator's own contract, on scripted and fill backends: indices that run on between calls,
errors that say what was tried, and a model that loads only when a record is to be made."""

from __future__ import annotations

import pytest
from examples.medical_billing import MedicalBilling
from typer.testing import CliRunner

from simulacra import GenerationError, Generator
from simulacra.backends.fake import ScriptedBackend
from simulacra.cli.app import app
from tests.conftest import EXAMPLES

SPEC = f"{EXAMPLES}/medical_billing.py:MedicalBilling"


def test_a_second_call_makes_new_records_not_the_first_ones_again():
    gen = Generator(MedicalBilling, model="fake-fill", seed=3, diversity=0)
    first = list(gen.outcomes(3))
    second = list(gen.outcomes(3))
    assert [o.index for o in first] == [0, 1, 2] and [o.index for o in second] == [3, 4, 5]
    assert not {o.seed for o in first} & {o.seed for o in second}
    assert not {repr(o.data) for o in first} & {repr(o.data) for o in second}


def test_generation_error_counts_the_tries_made_and_keeps_the_last_reply():
    fake = ScriptedBackend(['{"patient_id": "not a number"}'] * 4)
    gen = Generator(MedicalBilling, model=fake, max_attempts=2, seed=1, diversity=0)
    with pytest.raises(GenerationError) as caught:
        gen.generate(2)
    assert caught.value.attempts == 4  # 2 records x 2 tries, not the maximum per record
    assert caught.value.last_output == '{"patient_id": "not a number"}'
    assert len(caught.value.errors) == 2


def test_the_model_loads_on_first_use_only(counted_model):
    gen = Generator(MedicalBilling, model="counted-fill", seed=1)
    assert gen.fingerprint(5) and counted_model == []   # planning needs no model
    gen.generate(2)
    gen.generate(2)
    assert len(counted_model) == 1


def test_an_unknown_model_fails_at_construction_without_loading():
    from simulacra.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        Generator(MedicalBilling, model="nope")


def test_rerunning_a_finished_job_says_so_without_loading_the_model(tmp_path, counted_model):
    out = tmp_path / "out.jsonl"
    args = ["generate", SPEC, "-n", "3", "-m", "counted-fill", "-o", str(out)]
    first = CliRunner().invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0 and len(counted_model) == 1
    before = out.read_bytes()
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "already holds all 3 records of this job: nothing to do" in again.stderr
    assert len(counted_model) == 1 and out.read_bytes() == before
    # a bigger N is another job: it loads the model and refuses the file made by the first
    bigger = CliRunner().invoke(app, args[:3] + ["4"] + args[4:])
    assert bigger.exit_code == 2 and "made by a different job" in bigger.stderr


def test_models_lists_what_a_user_can_pick_not_the_test_backend():
    result = CliRunner().invoke(app, ["models"], catch_exceptions=False)
    assert "gemma-270m" in result.stdout and "fake-fill" not in result.stdout
