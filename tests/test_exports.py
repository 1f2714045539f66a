"""The public surface is a decision: __all__ is sorted and everything in it exists."""

import simulacra


def test_all_is_sorted_and_complete():
    assert simulacra.__all__ == sorted(simulacra.__all__)
    for name in simulacra.__all__:
        assert getattr(simulacra, name) is not None
