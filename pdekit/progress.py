"""Progress bars of long computations outside training (reference solvers, dataset generation).

One rule for every one of them: a tqdm bar on stderr that appears only once the work has lasted
:data:`DELAY_S` seconds, and only when stderr is a terminal (logs and CI output stay clean);
``enabled=True`` shows it at once and anywhere, ``False`` never. The trainer's bar
(:mod:`pdekit.solvers.training`) follows the same terminal rule.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

#: seconds of work before a bar appears
DELAY_S = 2.0


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool | None = None) -> tqdm:
    """A tqdm bar of ``total`` units for a computation that may be long (see the module)."""
    if enabled is None:
        show, delay = sys.stderr.isatty(), DELAY_S
    else:
        show, delay = bool(enabled), 0.0
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        delay=delay,
        disable=not show,
        leave=False,
        file=sys.stderr,
    )
