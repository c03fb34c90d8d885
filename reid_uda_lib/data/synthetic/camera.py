"""Cameras and images of the synthetic generator (:mod:`reid_uda_lib.data.synthetic`): :class:`Camera`
(viewpoint habits, framing, light, its background scene), :func:`sample_cameras`, and :func:`render_image`,
one image of a person seen by a camera in a domain's style."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .person import BodyFrame, Person, draw_person
from .style import VIEWS, DomainStyle

SUPERSAMPLE = 2             # draw at 2x and box-downsample: cheap anti-aliasing


@dataclass
class Camera:
    """One camera of a domain: viewpoint habits, framing, light and its scene (background strip)."""

    index: int                 # 1-based, as in the file names
    view_probs: tuple          # P(front), P(back), P(side)
    scale: float
    aspect: float
    dy: float
    mirror: bool
    gain: float
    tint: tuple
    light_dir: float           # -1..1, which side of the figure is lit
    occlusion_p: float
    scene: np.ndarray = field(repr=False)   # (H*S, 3*W*S, 3) uint8



_WALLS_INDOOR = np.array([(214, 204, 186), (196, 200, 204), (222, 214, 196), (188, 176, 160),
                          (204, 214, 206)], float)
_FLOORS_INDOOR = np.array([(150, 130, 110), (120, 120, 124), (170, 160, 140), (110, 96, 84)], float)
_WALLS_URBAN = np.array([(112, 116, 124), (96, 92, 88), (128, 124, 116), (84, 96, 108),
                         (140, 128, 112)], float)
_FLOORS_URBAN = np.array([(72, 74, 78), (96, 94, 90), (60, 62, 66), (86, 82, 76)], float)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise in [-1, 1]: a coarse random grid bicubically upsampled to (h, w)."""
    coarse = rng.uniform(-1, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _make_scene(rng: np.random.Generator, style: DomainStyle, h: int, w: int) -> np.ndarray:
    """A camera's background strip (h, w, 3) uint8: wall + floor, texture, clutter objects."""
    t = style.bg_urban
    iw, ifl = rng.integers(len(_WALLS_INDOOR)), rng.integers(len(_FLOORS_INDOOR))
    uw, ufl = rng.integers(len(_WALLS_URBAN)), rng.integers(len(_FLOORS_URBAN))
    wall = (1 - t) * _WALLS_INDOOR[iw] + t * _WALLS_URBAN[uw] + rng.normal(0, 8, 3)
    floor = (1 - t) * _FLOORS_INDOOR[ifl] + t * _FLOORS_URBAN[ufl] + rng.normal(0, 8, 3)
    horizon = int(h * rng.uniform(0.55, 0.75))
    y = np.arange(h, dtype=np.float32)[:, None, None]
    wall_grad = 1.0 + 0.08 * (y / h - 0.5) * rng.choice([-1, 1])
    floor_grad = 0.9 + 0.2 * (y - horizon) / max(1, h - horizon)
    img = np.where(y < horizon, wall[None, None] * wall_grad, floor[None, None] * floor_grad)
    img = np.broadcast_to(img, (h, w, 3)).astype(np.float32).copy()
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    # Clutter: windows/posters/doors on the wall, cars/bins standing on the floor.
    for _ in range(int(rng.poisson(style.bg_clutter))):
        col = tuple(int(c) for c in np.clip(wall * rng.uniform(0.4, 1.4) + rng.normal(0, 18, 3), 0, 255))
        bw, bh = int(w * rng.uniform(0.04, 0.15)), int(h * rng.uniform(0.1, 0.4))
        x0 = int(rng.uniform(0, w - bw))
        y0 = int(rng.uniform(0.05 * h, max(0.06 * h, horizon - 0.3 * bh))) if rng.random() < 0.6 \
            else int(horizon - bh * rng.uniform(0.3, 0.9))
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=col)
    # Urban scenes: paving joints on the floor (their contrast grows with bg_urban).
    step = int(h * rng.uniform(0.05, 0.09))
    if t > 0:
        joint = tuple(int(c) for c in floor * (1.0 - 0.3 * min(t, 1.0)))
        for yy in range(horizon + step, h, step):
            draw.line([(0, yy), (w, yy)], fill=joint, width=max(1, h // 100))
    img = np.asarray(out, dtype=np.float32)
    tex = _smooth_noise(rng, h, w, cell=max(4, h // 12))
    img = img * (1.0 + style.bg_texture * 2.0 * tex[..., None])
    if style.bg_grain > 0:
        img = img + 255.0 * style.bg_grain * rng.standard_normal((h, w, 1), dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_cameras(rng: np.random.Generator, style: DomainStyle, height: int, width: int) -> list[Camera]:
    """The cameras of a domain, each with its viewpoint habits, framing, light and scene."""
    h, w = height * SUPERSAMPLE, width * SUPERSAMPLE
    cams = []
    for i in range(style.num_cameras):
        cams.append(Camera(
            index=i + 1, view_probs=tuple(float(p) for p in rng.dirichlet([1.5, 1.5, 1.0])),
            scale=rng.uniform(0.9, 1.05), aspect=rng.uniform(0.9, 1.12), dy=rng.uniform(-0.03, 0.02),
            mirror=bool(i % 2 == 1), gain=float(np.clip(1.0 + rng.normal(0, style.camera_light_spread), 0.6, 1.4)),
            tint=tuple(float(x) for x in np.clip(1.0 + rng.normal(0, 0.04, 3), 0.85, 1.15)),
            light_dir=rng.uniform(-1, 1), occlusion_p=rng.uniform(0.0, 0.3),
            scene=_make_scene(rng, style, h, 3 * w)))
    return cams



# ----------------------------------------------------------------------------------------------
# One image
# ----------------------------------------------------------------------------------------------

def render_image(person: Person, camera: Camera, style: DomainStyle, rng: np.random.Generator,
                 height: int, width: int) -> Image.Image:
    """One RGB image (``height`` x ``width``) of ``person`` seen by ``camera`` in ``style``.

    Order: background crop → person (viewpoint, framing, pose, directional shading) → occluder →
    downsample → camera gain/tint → domain white balance, contrast/brightness, gamma → blur → noise.
    JPEG compression (``style.jpeg_quality``) happens when the image is saved.
    """
    S = SUPERSAMPLE
    ch, cw = height * S, width * S
    x_off = int(rng.integers(0, camera.scene.shape[1] - cw + 1))
    bg = camera.scene[:, x_off:x_off + cw].astype(np.float32) * float(1.0 + rng.normal(0, 0.03))
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).convert("RGBA")

    view = VIEWS[int(rng.choice(3, p=camera.view_probs))]
    pose = {"stride": rng.uniform(0.0, 0.09), "swing": rng.uniform(-0.35, 0.35),
            "lean": rng.normal(0, 0.006), "side_dir": int(rng.choice([-1, 1]))}
    u = ch * person.height_frac * camera.scale * (1.0 + rng.normal(0, 0.05))
    bottom = ch * (0.985 + camera.dy + rng.normal(0, 0.01))
    frame = BodyFrame(cx=cw / 2 + rng.normal(0, 0.035 * cw), top=bottom - u, u=u,
                   ax=camera.aspect * (1.0 + rng.normal(0, 0.05)), flip=-1 if camera.mirror else 1)
    layer = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
    draw_person(layer, person, view, frame, pose)
    # Directional light: one side of the figure brighter than the other (depends on the camera).
    arr = np.asarray(layer, dtype=np.float32)
    xs = (np.arange(cw, dtype=np.float32) - frame.cx) / (0.15 * u)
    shade = 1.0 + 0.18 * camera.light_dir * np.clip(xs, -1, 1)
    arr[..., :3] *= shade[None, :, None]
    layer = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    canvas.alpha_composite(layer)
    if rng.random() < camera.occlusion_p:
        _occlude(canvas, rng, camera)
    img = np.asarray(canvas.convert("RGB").reduce(S), dtype=np.float32) / 255.0

    # Per-image light (gain and tint) varies as much as between cameras, so that a model trained on a
    # few cameras can learn to ignore it.
    gain = camera.gain * (1.0 + rng.normal(0, 0.08)) * np.clip(1.0 + rng.normal(0, 0.035, 3), 0.9, 1.1)
    img = img * (gain * np.asarray(camera.tint) * np.asarray(style.white_balance)).astype(np.float32)
    img = np.clip((img - 0.5) * style.contrast + 0.5 + style.brightness, 0.0, 1.0) ** style.gamma
    out = Image.fromarray((img * 255.0 + 0.5).astype(np.uint8))
    if style.blur > 1.01:
        small = (max(4, round(width / style.blur)), max(8, round(height / style.blur)))
        out = out.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    if style.noise > 0:
        noisy = np.asarray(out, np.float32) + 255.0 * style.noise * rng.standard_normal((height, width, 3),
                                                                                     dtype=np.float32)
        out = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    return out


def _occlude(canvas: Image.Image, rng: np.random.Generator, camera: Camera) -> None:
    """A bench/car/bin across the bottom, or a pole in front of the person."""
    cw, ch = canvas.size
    d = ImageDraw.Draw(canvas)
    base = camera.scene[rng.integers(camera.scene.shape[0]), rng.integers(camera.scene.shape[1])]
    col = tuple(int(c) for c in np.clip(base * rng.uniform(0.3, 0.8) + rng.normal(0, 20, 3), 0, 255)) + (255,)
    if rng.random() < 0.6:
        top = ch * (1.0 - rng.uniform(0.15, 0.32))
        d.rectangle([-1, top, cw + 1, ch + 1], fill=col)
    else:
        x0, bw = cw * rng.uniform(0.0, 0.8), cw * rng.uniform(0.08, 0.18)
        d.rectangle([x0, -1, x0 + bw, ch + 1], fill=col)
