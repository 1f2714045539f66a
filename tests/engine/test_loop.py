"""The retry loop's spares: tries a last batch decodes beside its own, to stand in for a
rejected record instead of a retry batch of its own."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from simulacra import Generator
from simulacra.backends.base import Capabilities, Completion
from simulacra.backends.fake import ScriptedBackend
from simulacra.engine.loop import Try
from simulacra.engine.run import RecordTask
from simulacra.plan import Plan
from simulacra.schema import load_schema


class Bill(BaseModel):
    name: str
    total: float


def rec(name: str) -> str:
    return json.dumps({"name": name, "total": 10.0})


class StreamingScript(ScriptedBackend):
    """A scripted backend that streams its batch in request order, as a local decoder that
    batches continuously does, and notes each stream's requests and whether it was closed
    before its end."""

    def __init__(self, *replies: str, spares: bool = True, grammar: bool = False) -> None:
        super().__init__(replies, capabilities=Capabilities(batch=8, spares=spares,
                                                            grammar=grammar))
        self.streams: list[dict] = []

    def stream(self, requests):
        noted = {"requests": len(requests), "closed_early": True}
        self.streams.append(noted)
        for position, request in enumerate(requests):
            yield position, self.complete([request])[0]
        noted["closed_early"] = False


def test_a_spare_stands_in_for_a_rejected_record_without_a_retry_batch():
    fake = StreamingScript(rec("Ada"), rec("Ada"), rec("Cy"), rec("Di"))
    rows = []
    gen = Generator(Bill, model=fake, seed=3)
    outcomes = list(gen.outcomes(3, ledger=rows.append))
    assert {o.index: o.record.name for o in outcomes} == {0: "Ada", 1: "Di", 2: "Cy"}
    assert [s["requests"] for s in fake.streams] == [4]   # 3 records and one spare, one stream
    assert gen.stats.rejected == {"duplicate": 1} and gen.stats.spares_unused == 0
    stood_in = next(r for r in rows if r["index"] == 1)
    assert [t["rejected"] is None for t in stood_in["tries"]] == [False, True]
    assert stood_in["tries"][1]["spare"] is True and stood_in["attempts"] == 2
    assert outcomes[-1].attempts == 2 and outcomes[-1].seed == stood_in["seed"]


def test_a_spare_not_needed_is_dropped_and_its_stream_closed():
    fake = StreamingScript(rec("Ada"), rec("Bob"), rec("never read"))
    gen = Generator(Bill, model=fake, seed=3)
    assert [r.name for r in gen.generate(2)] == ["Ada", "Bob"]
    assert fake.streams == [{"requests": 3, "closed_early": True}]
    assert fake.remaining == 1 and gen.stats.spares_unused == 1 and gen.stats.attempts == 2


def test_a_rejected_spare_leaves_the_retry_to_the_next_batch():
    fake = StreamingScript(rec("Ada"), rec("Ada"), rec("Ada"), rec("Bob"), rec("spare 2"))
    gen = Generator(Bill, model=fake, seed=3)
    assert sorted(r.name for r in gen.generate(2)) == ["Ada", "Bob"]
    # the spare (a third Ada) was rejected too; index 1's retry went into a batch of its own,
    # which had a spare of its own, dropped once the retry was kept
    assert [s["requests"] for s in fake.streams] == [3, 2]
    assert gen.stats.rejected == {"duplicate": 2} and gen.stats.spares_unused == 1


def test_spares_are_the_same_on_a_rerun_and_differ_between_batches():
    def spare_seed(seed):
        fake = StreamingScript(rec("Ada"), rec("Bob"), rec("Cy"))
        Generator(Bill, model=fake, seed=seed).generate(2)
        return fake.history[-1].seed

    assert spare_seed(4) == spare_seed(4) != spare_seed(5)


def test_a_spare_decodes_without_counting_in_the_steer_until_it_is_kept():
    task = RecordTask(StreamingScript(grammar=True), Plan.build(load_schema(Bill)), 3,
                      temperature=0.9)
    spare, first = Try(-1, 1, 7, spare=True), Try(0, 1, 8)
    spare_request, first_request = task.requests([spare, first])
    assert spare_request.extra["steer_read_only"] and "steer_read_only" not in first_request.extra
    assert spare_request.extra["steer"] is task.steer
    task.judge(spare, spare_request, Completion(text=rec("Di")))
    assert task.steer.fields[("name",)].count(b'Di"') == 1


def test_drafting_examples_takes_no_spares_and_the_run_after_it_does():
    names = iter(f"Name {i}" for i in range(1000))
    fake = StreamingScript(*[lambda request: rec(next(names))] * 200, grammar=True)
    gen = Generator(Bill, model=fake, seed=3)
    gen.generate(40)    # no examples: drafts first, in batches of 8
    sizes = [s["requests"] for s in fake.streams]
    assert gen.stats.drafted > 0 and sum(sizes[:-5]) == gen.stats.drafted   # no spare
    assert sizes[-5:] == [8, 8, 8, 8, 9]   # the run's last batch has one


@pytest.mark.parametrize("why", ["backend", "samplers"])
def test_no_spares_without_the_capability_or_when_records_depend_on_their_index(why):
    fake = StreamingScript(rec("Ada"), rec("Bob"), spares=why != "backend")
    samplers = {"total": lambda rng, index: float(index)} if why == "samplers" else None
    Generator(Bill, model=fake, seed=3, samplers=samplers).generate(2)
    assert [s["requests"] for s in fake.streams] == [2] and fake.remaining == 0


@pytest.mark.embedded
def test_spares_on_the_embedded_model_keep_every_record_valid_and_free_their_cells(embedded):
    from examples.medical_billing import EXAMPLES, SUBJECT, MedicalBilling

    rows = []
    # a rule that about half of the records break, so some are rejected and a spare is needed
    gen = Generator(MedicalBilling, model=embedded, examples=EXAMPLES, subject=SUBJECT, seed=2,
                    rules=["patient_id % 2 == 0"])
    records = [o.record for o in gen.outcomes(4, ledger=rows.append)]
    assert len(records) == 4 and all(r.patient_id % 2 == 0 for r in records)
    assert gen.stats.rejected.get("rule", 0) >= 1
    assert any(t.get("spare") for row in rows for t in row["tries"])
    # cells of spares dropped mid-decode are freed: every slot but the prefix's is empty
    decoder = embedded._decoder
    memory = decoder.ctx.memory
    assert all(decoder._ll.llama_memory_seq_pos_max(memory, slot) == -1
               for slot in range(decoder.n_seq))
