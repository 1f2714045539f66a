"""The public surface is a decision: __all__ is sorted, everything in it exists, and every
public class of the public modules is in it (tasks are the engine's, not the user's)."""

import inspect
import subprocess
import sys

import pytest

import simulacra
from simulacra import errors, extract, generate, text


def test_all_is_sorted_and_complete():
    assert simulacra.__all__ == sorted(simulacra.__all__)
    for name in simulacra.__all__:
        assert getattr(simulacra, name) is not None


@pytest.mark.parametrize("module", [errors, generate, text, extract], ids=lambda m: m.__name__)
def test_every_public_class_of_a_public_module_is_exported(module):
    defined = [name for name, obj in vars(module).items()
               if inspect.isclass(obj) and obj.__module__ == module.__name__
               and not name.startswith("_") and not name.endswith("Task")]
    assert defined and set(defined) <= set(simulacra.__all__), set(defined) - set(simulacra.__all__)


def test_the_library_calls_are_exported():
    for name in ("Generator", "TextWriter", "Extractor", "roundtrip", "load_schema",
                 "SimulacraError", "UsageError", "GenerationError"):
        assert name in simulacra.__all__
    assert callable(simulacra.Generator.write)


def test_version_flag_prints_the_package_version():
    out = subprocess.run([sys.executable, "-c", "from simulacra.cli.app import main; main()",
                          "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"simulacra {simulacra.__version__}"
