"""Rules proposed from examples and field names."""

from examples.medical_billing import EXAMPLES as MEDICAL_EXAMPLES
from examples.medical_billing import MedicalBilling
from hypothesis import given, settings
from hypothesis import strategies as st

from simulacra.checks.propose import propose_rules
from simulacra.checks.rules import parse_rules
from simulacra.schema import load_schema


def test_the_tutorial_examples_give_the_claim_ordering_and_signs():
    rules = propose_rules(load_schema(MedicalBilling), MEDICAL_EXAMPLES)
    assert rules == ["insurance_claim_amount <= total_charge", "total_charge >= 0",
                     "insurance_claim_amount >= 0"]


def test_fields_of_other_scales_and_ids_are_not_ordered():
    schema = load_schema({"type": "object", "properties": {
        "order_id": {"type": "integer"}, "amount": {"type": "integer"},
        "population": {"type": "integer"}}})
    examples = [{"order_id": 900000, "amount": 12, "population": 80000},
                {"order_id": 900001, "amount": 40, "population": 65000}]
    assert [r for r in propose_rules(schema, examples) if "<=" in r] == []


def test_names_state_orderings_without_examples():
    schema = load_schema({"type": "object", "properties": {
        "salary_min": {"type": "integer"}, "salary_max": {"type": "integer"},
        "start_date": {"type": "string", "format": "date"},
        "end_date": {"type": "string", "format": "date"},
        "from_city": {"type": "string"}, "to_city": {"type": "string"}}})
    assert propose_rules(schema, []) == ["salary_min <= salary_max", "start_date <= end_date"]


SCHEMA = load_schema({"type": "object", "properties": {
    "a": {"type": "number"}, "b": {"type": "number"}, "c": {"type": "number"}}})
number = st.floats(min_value=-1000, max_value=1000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({"a": number, "b": number, "c": number}), min_size=2,
                max_size=6))
def test_proposed_rules_hold_on_every_example(examples):
    rules = parse_rules(propose_rules(SCHEMA, examples))
    assert all(rule.holds(example) for rule in rules for example in examples)
