"""Docs that run: every code block in README.md and docs/ marked `<!-- doc-test -->` runs, as
written but with a small N, in a scratch directory beside the examples, on the real model."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MARK = "<!-- doc-test -->"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def marked_blocks() -> list[tuple[str, str, str]]:
    """(where, language, code) of every marked block."""
    blocks = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for match in re.finditer(re.escape(MARK) + r"\n", text):
            fence = FENCE.match(text, match.end())
            assert fence, f"{doc.name}: {MARK} is not followed by a code block"
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{doc.name}:{line}", fence.group(1), fence.group(2)))
    return blocks


BLOCKS = marked_blocks()


def small(code: str, language: str) -> str:
    """The same commands with a small N: `-n 20` -> `-n 2`, `generate(10)` -> `generate(2)`."""
    if language == "python":
        return re.sub(r"\b(generate|stream|write)\((\s*[^()]*?,\s*)?\d[\d_]*", r"\1(\g<2>2", code)
    code = re.sub(r"-n \d+", "-n 2", code)
    return code.replace(".venv/bin/", f"{Path(sys.executable).parent}/")


def test_the_docs_mark_their_runnable_blocks_and_each_parses():
    languages = {language for _, language, _ in BLOCKS}
    assert len(BLOCKS) >= 3 and languages >= {"sh", "python"}, BLOCKS
    for where, language, code in BLOCKS:
        if language == "python":
            ast.parse(code, filename=where)
        else:
            subprocess.run(["bash", "-n", "-c", code], check=True)


@pytest.mark.embedded
@pytest.mark.parametrize("where, language, code", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_a_marked_doc_block_runs(tmp_path, where, language, code):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = ([sys.executable, "-c", small(code, language)] if language == "python"
               else ["bash", "-e", "-c", small(code, language)])
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (where, done.stderr[-1500:])
