"""The LangChain tutorial's MedicalBilling job: the schema and its three few-shot examples.

    simulacra generate examples/medical_billing.py:MedicalBilling -n 10
"""

from pydantic import BaseModel


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float


# The tutorial's examples, as records (the CLI reads them with --examples, or from here).
EXAMPLES = [
    {"patient_id": 123456, "patient_name": "John Doe", "diagnosis_code": "J20.9",
     "procedure_code": "99203", "total_charge": 500, "insurance_claim_amount": 350},
    {"patient_id": 789012, "patient_name": "Johnson Smith", "diagnosis_code": "M54.5",
     "procedure_code": "99213", "total_charge": 150, "insurance_claim_amount": 120},
    {"patient_id": 345678, "patient_name": "Emily Stone", "diagnosis_code": "E11.9",
     "procedure_code": "99214", "total_charge": 300, "insurance_claim_amount": 250},
]
SUBJECT = "medical_billing"
EXTRA = "the name must be chosen at random. Make it something you wouldn't normally choose."
