"""simulacra for LangChain users: the tutorial's functions, and LangChain models on simulacra.

    from simulacra.langchain import ChatSimulacra as ChatOpenAI, create_openai_data_generator

Needs the extra: pip install 'simulacra[langchain]'.
"""

try:
    import langchain_core  # noqa: F401
except ImportError:  # pragma: no cover - exercised by the no-LangChain test in a subprocess
    raise ImportError(
        "simulacra.langchain needs LangChain: pip install 'simulacra[langchain]'"
    ) from None

from simulacra.langchain.models import ChatSimulacra, OpenAI, SimulacraLLM
from simulacra.langchain.tutorial import (
    OPENAI_TEMPLATE,
    SYNTHETIC_FEW_SHOT_PREFIX,
    SYNTHETIC_FEW_SHOT_SUFFIX,
    DatasetGenerator,
    create_data_generation_chain,
    create_data_generator,
    create_extraction_chain_pydantic,
    create_openai_data_generator,
)

__all__ = [
    "OPENAI_TEMPLATE",
    "SYNTHETIC_FEW_SHOT_PREFIX",
    "SYNTHETIC_FEW_SHOT_SUFFIX",
    "ChatSimulacra",
    "DatasetGenerator",
    "OpenAI",
    "SimulacraLLM",
    "create_data_generation_chain",
    "create_data_generator",
    "create_extraction_chain_pydantic",
    "create_openai_data_generator",
]
