"""Colormaps for previews: 256-entry RGB tables, made without an imaging library.

``grey`` is the identity. ``viridis``, ``magma``, ``inferno`` and
``plasma`` (the perceptually uniform maps of matplotlib, whose data is in
the public domain) are drawn from sixth-degree polynomial fits of each
channel, which stay within a few levels of the published tables: close
enough for a preview, and a few lines instead of 3,000 numbers.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# c0..c6 of each channel's polynomial in t = level / 255, per map: ((r...), (g...), (b...)).
FITS: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "viridis": (
        (0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486,
         6.228269936347081, 4.776384997670288, -5.435455855934631),
        (0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585,
         14.17993336680509, -13.74514537774601, 4.645852612178535),
        (0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987,
         56.69055260068105, -65.35303263337234, 26.3124352495832),
    ),
    "magma": (
        (-0.002136485053939582, 0.2516605407371642, 8.353717279216625, -27.66873308576866,
         52.17613981234068, -50.76852536473588, 18.65570506591883),
        (-0.000749655052795221, 0.6775232436837668, -3.577719514958484, 14.26473078096533,
         -27.94360607168351, 29.04658282127291, -11.48977351997711),
        (-0.005386127855323933, 2.494026599312351, 0.3144679030132573, -13.64921318813922,
         12.94416944238394, 4.23415299384598, -5.601961508734096),
    ),
    "inferno": (
        (0.0002189403691192265, 0.1065134194856116, 11.60249308247187, -41.70399613139459,
         77.162935699427, -71.31942824499214, 25.13112622477341),
        (0.001651004631001012, 0.5639564367884091, -3.972853965665698, 17.43639888205313,
         -33.40235894210092, 32.62606426397723, -12.24266895238567),
        (-0.01948089843709184, 3.932712388889277, -15.9423941062914, 44.35414519872813,
         -81.80730925738993, 73.20951985803202, -23.07032500287172),
    ),
    "plasma": (
        (0.05873234392399702, 2.176514634195958, -2.689460476458034, 6.130348345893603,
         -11.10743619062271, 10.02306557647065, -3.658713842777788),
        (0.02333670892565664, 0.2383834171260182, -7.455851135738909, 42.3461881477227,
         -82.66631109428045, 71.41361770095349, -22.93153465461149),
        (0.5433401826748754, 0.7539604599784036, 3.110799939717086, -28.51885465332158,
         60.13984767418263, -54.07218655560067, 18.19190778539828),
    ),
}  # fmt: skip
NAMES = ("grey", *FITS)


@functools.cache
def table(name: str) -> np.ndarray:
    """The map's 256 x 3 uint8 table."""
    import numpy as np

    t = np.linspace(0.0, 1.0, 256)
    if name == "grey":
        return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    channels = [np.polynomial.polynomial.polyval(t, coefficients) for coefficients in FITS[name]]
    return np.clip(np.rint(np.stack(channels, axis=1) * 255), 0, 255).astype(np.uint8)
