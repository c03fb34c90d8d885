"""The synthetic two-domain person re-ID generator (``python -m reid_uda_lib synthetic``).

:mod:`.generator` (the domains, the Market-1501 layout on disk, the command line), :mod:`.style` (the two
domains' styles and the ``gap`` between them), :mod:`.person` (identities and how they are drawn),
:mod:`.camera` (viewpoints, light, background, rendering).
"""
from .generator import (GENERATOR_VERSION, SPLITS, SyntheticSpec, DomainStyle, Person, Camera, domain_styles,
                        sample_person, sample_cameras, BodyFrame, draw_person, render_image, generate_domain,
                        generate_synthetic_pair, contact_sheet, main, STYLE_A, STYLE_B_REF, PALETTE, PALETTE_NAMES,
                        SUPERSAMPLE, JPEG_QUALITY_A)

__all__ = ["GENERATOR_VERSION", "SPLITS", "SyntheticSpec", "DomainStyle", "Person", "Camera", "domain_styles", "sample_person", "sample_cameras", "BodyFrame", "draw_person", "render_image", "generate_domain", "generate_synthetic_pair", "contact_sheet", "main", "STYLE_A", "STYLE_B_REF", "PALETTE", "PALETTE_NAMES", "SUPERSAMPLE", "JPEG_QUALITY_A"]
