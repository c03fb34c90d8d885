"""The synthetic two-domain person re-ID generator (``python -m reid_uda_lib synthetic``).

:mod:`.generator` (the domains, the Market-1501 layout on disk, the command line), :mod:`.style` (the two
domains' styles and the ``gap`` between them), :mod:`.person` (identities and how they are drawn),
:mod:`.camera` (viewpoints, light, background, rendering).
"""
from .generator import *  # noqa: F401,F403  (the generator's public names, listed in its __all__)
from .generator import __all__  # noqa: F401
