"""How lrbench draws with matplotlib (`show -o`, `report`): a Figure on the Agg canvas through
matplotlib's object API, with no pyplot and so no global state. matplotlib is the optional `plot`
extra, imported only when something is drawn."""

from __future__ import annotations

from lrbench.errors import RUNTIME, LrbenchError


def figure(missing: str, **kwargs):
    """An empty constrained-layout Figure (kwargs: figsize, dpi, ...); LrbenchError(`missing`, exit 1)
    when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise LrbenchError(missing, RUNTIME) from None
    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig
