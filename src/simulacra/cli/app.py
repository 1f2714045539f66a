"""simulacra's CLI: one Typer app, one module per command, one error policy at the edge.

Errors the user can fix (SimulacraError subclasses of UsageError) print one line and exit 2;
a run that could not finish exits 1 after its summary. Set SIMULACRA_TRACEBACK=1 to see
tracebacks instead.
"""

from __future__ import annotations

import os
import re
import sys

import typer

from simulacra.errors import SimulacraError, UsageError

app = typer.Typer(
    help="Synthetic structured data from a schema, offline on an embedded model by default.\n\n"
         "Quick start: simulacra generate examples/medical_billing.py:MedicalBilling -n 10",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from simulacra.cli import check, extract, generate, models, report, roundtrip, text

    app.command("generate")(generate.generate)
    app.command("text")(text.text)
    app.command("extract")(extract.extract)
    app.command("roundtrip")(roundtrip.roundtrip)
    app.command("score")(roundtrip.score)
    app.command("report")(report.report)
    app.command("models")(models.models)
    app.command("check")(check.check)


_register()


def fail(exc: SimulacraError) -> typer.Exit:
    """Print the one-line error and give the exit to raise (2 for usage, 1 otherwise)."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2 if isinstance(exc, UsageError) else 1)


def main() -> None:
    """The console script. Usage errors (unknown flags, missing arguments) print one line too."""
    usage_errors, aborts = _click_errors()
    sys.argv[1:] = optional_value(sys.argv[1:], "--ray", "local", is_ray_address)
    if os.environ.get("SIMULACRA_TRACEBACK"):
        app()
        return
    try:
        code = app(standalone_mode=False)
    except usage_errors as exc:
        hint = f" (see: simulacra {exc.ctx.info_name} --help)" if exc.ctx else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except SimulacraError as exc:  # raised outside a command's own handler
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, UsageError) else 1)
    except (KeyboardInterrupt, *aborts):
        typer.echo("interrupted; records written so far are kept", err=True)
        sys.exit(130)
    sys.exit(code or 0)


def is_ray_address(token: str) -> bool:
    return token in ("auto", "local") or token.startswith("ray://") or bool(
        re.fullmatch(r"[\w.-]+:\d+", token))


def optional_value(args: list[str], flag: str, default: str, is_value) -> list[str]:
    """Let `flag` stand alone (`--ray`) or take a value (`--ray auto`): a bare flag gets
    `default`, since Click options cannot have an optional value."""
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == flag and (i + 1 == len(args) or not is_value(args[i + 1])):
            out.append(default)
    return out


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Click's UsageError and Abort: recent Typer vendors its own copy of click, so both the
    vendored and the standalone classes are caught."""
    usage: list[type] = []
    abort: list[type] = [typer.Abort]
    try:
        from typer._click import exceptions as vendored

        usage.append(vendored.UsageError)
        if hasattr(vendored, "Abort"):
            abort.append(vendored.Abort)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.UsageError)
        abort.append(click.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(abort)
