"""simulacra's CLI: one Typer app, one module per command, one error policy at the edge.

Commands raise; `error_policy` (wrapped around every command) and `main` turn that into
the exit: errors the user can fix (UsageError) print one line and exit 2; a run that could
not finish (GenerationError, BackendError, OutputError) exits 1 after its summary; Ctrl-C
exits 130 and says how to resume. Set SIMULACRA_TRACEBACK=1 to see tracebacks instead.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer

from simulacra.errors import SimulacraError, UsageError

app = typer.Typer(
    help="Synthetic structured data from a schema, offline on an embedded model by default.\n\n"
         "Quick start: simulacra generate examples/medical_billing.py:MedicalBilling -n 10",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INTERRUPTED = ("interrupted; what was written so far is kept: run the same command again to "
               "resume")


def exit_code(exc: SimulacraError) -> int:
    return 2 if isinstance(exc, UsageError) else 1


def _version(value: bool) -> None:
    if value:
        from simulacra import __version__

        typer.echo(f"simulacra {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
    """Synthetic structured data from a schema, offline on an embedded model by default."""


def error_policy(command: Callable[..., Any]) -> Callable[..., Any]:
    """The one place a command's error becomes its exit (see the module docstring)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get("SIMULACRA_TRACEBACK"):
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except SimulacraError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            typer.echo(INTERRUPTED, err=True)
            raise typer.Exit(130) from None

    return run


def _register() -> None:
    from simulacra.cli import check, extract, generate, models, report, roundtrip, text

    for name, command in (("generate", generate.generate), ("text", text.text),
                          ("extract", extract.extract), ("roundtrip", roundtrip.roundtrip),
                          ("score", roundtrip.score), ("report", report.report),
                          ("models", models.models), ("check", check.check)):
        app.command(name)(error_policy(command))


_register()


def main() -> None:
    """The console script. Usage errors (unknown flags, missing arguments) print one line too."""
    usage_errors, aborts = _click_errors()
    sys.argv[1:] = optional_value(sys.argv[1:], "--ray", "local", is_ray_address)
    if os.environ.get("SIMULACRA_TRACEBACK"):
        app(prog_name="simulacra")
        return
    try:
        code = app(standalone_mode=False, prog_name="simulacra")
    except usage_errors as exc:
        message = exc.format_message()
        if not message:  # `simulacra` alone: the help was the answer
            sys.exit(0)
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(2)
    except SimulacraError as exc:  # raised outside a command (an option's callback)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(exc))
    except (KeyboardInterrupt, *aborts):
        typer.echo(INTERRUPTED, err=True)
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
