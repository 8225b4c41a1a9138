"""Errors pdekit raises on bad input; each message names what is wrong and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PdekitError(Exception):
    """Base class of pdekit's own errors."""


class UnknownNameError(PdekitError, ValueError):
    """An unknown problem, solver, parameter or option name; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        close = difflib.get_close_matches(str(name), self.valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or '(none)'}{hint}"
        )


class ParameterError(PdekitError, ValueError):
    """A parameter or config value out of its allowed range or of the wrong type."""


class UnsupportedPairError(PdekitError, ValueError):
    """A solver that cannot solve the requested problem; the message says why and who can."""


class CheckpointError(PdekitError, ValueError):
    """A checkpoint that is missing, corrupt, of another format, problem or solver."""


class MeshError(PdekitError, ValueError):
    """A mesh file that is missing, corrupt or unsupported."""


class DivergenceError(PdekitError, RuntimeError):
    """Training diverged and could not be recovered; the last good checkpoint is intact."""


class ConvergenceError(PdekitError, RuntimeError):
    """An inner solve (a Levenberg-Marquardt fit) did not reach its tolerance; its result was
    not used."""


class OutputError(PdekitError, OSError):
    """An output path (run directory, checkpoint directory) that cannot be created or written."""


class TrainingInterrupted(PdekitError):
    """Training stopped on SIGTERM/SIGINT at a step boundary, after writing a checkpoint.

    Attributes
    ----------
    signum: the signal received.
    step: the step at which training stopped.
    checkpoint: path of the checkpoint written (None when no checkpoint directory was given).
    """

    def __init__(self, message: str, *, signum: int, step: int, checkpoint=None):
        super().__init__(message)
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
