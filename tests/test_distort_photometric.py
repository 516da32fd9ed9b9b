"""Photometric distortions: deterministic from the generator, page-local, in range, no-ops when
off, and each visibly does what it claims. Plus the counter-based hash noise they rely on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import ecg_like

from ecgsynth.distort import noise, overlays, paper, sensor
from ecgsynth.render import Renderer
from ecgsynth.spec import sample_page_spec

EFFECTS = [getattr(m, n) for m in (paper, overlays, sensor) for n in m.__all__]
H, W = 160, 208  # small test pages

# effects whose default sizes (fractions of the page) are too small to act on a tiny page
STRONG = {
    "MotionBlur": {"length": (0.04, 0.06)},
    "DefocusBlur": {"radius": (0.015, 0.02)},
}


def make(cls: type, **fields) -> object:
    """An effect with the test overrides, ``p = 1`` and ``strength = 1`` unless given."""
    return cls(**{"p": 1.0, "strength": 1.0, **STRONG.get(cls.__name__, {}), **fields})


def run(effect, image: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(seed)
    params = effect.sample(image.shape[0], *image.shape[-2:], g, image.device)
    return effect.apply(image, params), params


def page_like(batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Pale tinted paper with a grid, dark ink strokes and a little texture: ``[B, 3, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    img = torch.tensor([0.97, 0.95, 0.92]).view(1, 3, 1, 1).repeat(batch, 1, H, W)
    grid = torch.tensor([0.95, 0.6, 0.6]).view(1, 3, 1, 1)
    img[:, :, ::8, :] = grid
    img[:, :, :, ::8] = grid
    x = torch.arange(W)
    for b in range(batch):
        y = (H / 2 + 30 * torch.sin(x / (9.0 + b))).long()
        for dy in (-1, 0, 1):
            img[b, :, (y + dy).clamp(0, H - 1), x] = 0.1
    img[:, :, 10:14, 20:120] = 0.05  # a text-like dark bar
    return (img + 0.01 * torch.rand(img.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return page_like()


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_shape_dtype_range_and_determinism(cls, image):
    effect = make(cls)
    out, params = run(effect, image, seed=3)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again, params2 = run(effect, image, seed=3)
    assert params.keys() == params2.keys()
    assert all(torch.equal(params[k], params2[k]) for k in params)
    assert torch.equal(out, again)
    assert all(v.shape[0] == image.shape[0] for v in params.values())  # per-page tensors
    assert not torch.equal(out, image), "p = 1, strength = 1 must change the page"


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_different_seeds_differ(cls, image):
    effect = make(cls)
    a, _ = run(effect, image, seed=1)
    b, _ = run(effect, image, seed=2)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_p0_leaves_the_page_unchanged(cls, image):
    out, params = run(make(cls, p=0.0), image, seed=4)
    assert not bool(params["active"].any())
    assert torch.equal(out, image)


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_strength0_is_a_no_op(cls, image):
    """Definition: ``strength = 0`` leaves pixels unchanged (to float rounding), except JPEG,
    which still re-encodes at quality 95: luma near-lossless (> 35 dB), colour a little
    softened by the 4:2:0 chroma subsampling (> 25 dB on this page of 1-px red lines)."""
    out, _ = run(make(cls, strength=0.0), image, seed=5)
    if cls is sensor.JPEG:
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        assert psnr((out * luma).sum(1), (image * luma).sum(1)) > 35.0
        assert psnr(out, image) > 25.0
    else:
        torch.testing.assert_close(out, image, atol=2e-6, rtol=0)


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_a_page_does_not_depend_on_its_batch(cls, image):
    """The pipeline draws each page's parameters alone; applying them batched must give the
    page the same pixels as applying them to the page alone."""
    effect = make(cls)
    per_page = [effect.sample(1, H, W, torch.Generator().manual_seed(10 + i), "cpu")
                for i in range(2)]  # fmt: skip
    batched = {k: torch.cat([p[k] for p in per_page]) for k in per_page[0]}
    together = effect.apply(image, batched)
    for i in range(2):
        alone = effect.apply(image[i : i + 1], per_page[i])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pattern", [(True, False, False), (True, True, False)])
def test_inactive_pages_are_untouched(pattern):
    """Both ways of skipping pages: the active subset alone (few active) and masking inside
    the batched computation (most active)."""
    image = page_like(batch=3)
    for cls in EFFECTS:
        effect = make(cls)
        _, params = run(effect, image, seed=6)
        params["active"] = torch.tensor(pattern)
        out = effect.apply(image, params)
        assert torch.equal(out[2], image[2]), cls.__name__
        assert not torch.equal(out[0], image[0]), cls.__name__


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def flat(value: float = 0.5, batch: int = 2, size: int = 128) -> torch.Tensor:
    return torch.full((batch, 3, size, size), value)


# ---------------------------------------------------------------- what each effect does


def test_gaussian_noise_has_the_requested_std():
    out, _ = run(sensor.GaussianNoise(sigma=(0.05, 0.05), strength=1.0), flat(size=256))
    diff = out - 0.5
    assert abs(float(diff.std()) - 0.05) < 0.002
    assert abs(float(diff.mean())) < 0.001
    # independent channels
    assert (
        abs(float(torch.corrcoef(diff[:, :2].flatten(2).transpose(0, 1).flatten(1))[0, 1])) < 0.02
    )


def test_shot_noise_grows_with_sqrt_intensity():
    img = flat(0.25, size=256)
    img[:, :, :, 128:] = 0.81
    out, _ = run(sensor.ShotNoise(scale=(0.05, 0.05), strength=1.0), img)
    dark, bright = (out - img)[..., :128].std(), (out - img)[..., 128:].std()
    assert abs(float(bright / dark) - math.sqrt(0.81 / 0.25)) < 0.1
    assert abs(float(dark) - 0.05 * 0.5) < 0.002


def high_frequency_energy(x: torch.Tensor) -> float:
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2]
    lap = lap - x[..., 1:-1, 2:]
    return float((lap[..., 8:-8, 8:-8] ** 2).mean())


@pytest.mark.parametrize("cls", [sensor.MotionBlur, sensor.DefocusBlur], ids=lambda c: c.__name__)
def test_blur_removes_high_frequencies(cls, image):
    out, _ = run(make(cls), image)
    assert high_frequency_energy(out) < 0.5 * high_frequency_energy(image)
    assert abs(float(out.mean() - image.mean())) < 0.01  # normalised kernels


def test_motion_blur_is_directional():
    """A horizontal blur leaves a horizontal line sharp and smears a vertical one."""
    img = flat(1.0, batch=1)
    img[:, :, 64, :] = 0.0
    img[:, :, :, 64] = 0.0
    effect = sensor.MotionBlur(length=(0.06, 0.06), strength=1.0)
    params = effect.sample(1, 128, 128, torch.Generator().manual_seed(0), "cpu")
    params["angle"] = torch.zeros(1)
    out = effect.apply(img, params)
    assert float(out[0, 0, 64, 20:40].max()) < 0.05  # the horizontal line stays black
    assert float(out[0, 0, 20:40, 64].min()) > 0.8  # the vertical one is spread out


def test_jpeg_quality_controls_the_error(image):
    errors = []
    for q in (20.0, 50.0, 95.0):
        out, _ = run(sensor.JPEG(quality=(q, q), strength=1.0), image)
        errors.append(psnr(out, image))
    assert errors[0] < errors[1] < errors[2]
    assert errors[0] < 32.0  # quality 20 is visibly lossy
    # 8x8 blocking: the error jumps across block borders more than inside blocks
    out, _ = run(sensor.JPEG(quality=(20.0, 20.0), strength=1.0), image)
    d = (out - image)[..., 8:-8, :].diff(dim=-1).abs().mean((0, 1, 2))
    assert float(d[7::8].mean()) > 1.1 * float(d.mean())


def test_jpeg_matches_opencv():
    """Our round trip is a baseline JPEG: close to OpenCV's codec at the same quality."""
    cv2 = pytest.importorskip("cv2")
    img = page_like(batch=1)
    out, _ = run(sensor.JPEG(quality=(50.0, 50.0), strength=1.0), img)
    u8 = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:, :, ::-1]
    ok, enc = cv2.imencode(".jpg", np.ascontiguousarray(u8), [cv2.IMWRITE_JPEG_QUALITY, 50])
    ref = torch.from_numpy(cv2.imdecode(enc, 1)[:, :, ::-1].astype(np.float32) / 255)
    ref = ref.permute(2, 0, 1)[None]
    assert ok and psnr(out, ref) > 30.0
    assert abs(psnr(out, img) - psnr(ref, img)) < 1.5


def test_color_temperature_moves_red_and_blue_apart():
    out, params = run(sensor.ColorTemperature(strength=1.0), flat(0.6))
    gains = params["gains"]
    shift = out.mean((2, 3)) - 0.6
    for b in range(2):
        warm = float(gains[b, 0] - gains[b, 2]) > 0
        assert (float(shift[b, 0] - shift[b, 2]) > 0) == warm
    assert float(out.max()) <= 0.6 + 1e-6  # gains normalised to <= 1


def test_brightness_contrast_gamma_is_monotonic():
    ramp = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(2, 3, 4, 256).contiguous()
    out, _ = run(sensor.BrightnessContrastGamma(strength=1.0), ramp)
    assert bool((out.diff(dim=-1) >= -1e-6).all())
    assert (out - ramp).abs().max() > 0.02


def test_moire_makes_coloured_fringes():
    out, _ = run(sensor.Moire(strength=1.0), flat(0.5, size=256))
    assert float(out.std()) > 0.005
    assert float((out[:, 0] - out[:, 2]).abs().mean()) > 0.002  # channels differ: coloured
    # slow fringes: a heavily blurred copy still varies
    low = torch.nn.functional.avg_pool2d(out, 16)
    assert float(low.std()) > 0.002


def test_stains_and_rings_only_darken_locally(image):
    for cls in (paper.Stains, paper.CoffeeRings):
        out, params = run(make(cls), image, seed=2)
        assert bool((out <= image + 1e-6).all()), cls.__name__
        changed = (image - out).amax(1) > 0.01
        assert 0.0 < float(changed.float().mean()) < 0.8, cls.__name__
        b, k = 0, 0
        cx, cy = params["centre"][b, k].tolist()
        r = float(params["radius"][b, k])
        yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        far = ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt() > 2.3 * r
        others = [params["centre"][b, j] for j in range(1, params["centre"].shape[1])
                  if float(params["opacity"][b, j]) > 0]  # fmt: skip
        if not others:  # only one blob: nothing changes far from it
            assert not bool(changed[b][far].any()), cls.__name__


def test_fading_lightens_ink_and_keeps_paper(image):
    out, _ = run(paper.Fading(strength=1.0), image)
    ink = image.mean(1) < 0.3
    paper_px = image.mean(1) > 0.9
    assert float((out.mean(1) - image.mean(1))[ink].mean()) > 0.05
    assert float((out - image).abs().mean(1)[paper_px].mean()) < 0.01
    assert bool((out >= image - 1e-6).all())  # only lightens


def test_bleed_through_mirrors_the_ink():
    img = flat(0.95, batch=1, size=128)
    img[:, :, 40:90, 10:40] = 0.05  # ink block on the left only
    effect = paper.BleedThrough(strength=1.0, shift=0.0)
    out, _ = run(effect, img)
    mirrored = (img - out)[0, :, 45:85, 92:114].mean()
    elsewhere = (img - out)[0, :, 45:85, 50:70].mean()
    assert float(mirrored) > 0.02 and float(elsewhere) < 0.25 * float(mirrored)


def test_shadow_and_lighting_change_brightness_smoothly(image):
    for cls in (paper.Shadow, paper.UnevenLighting):
        out, _ = run(make(cls), flat(0.8, size=128), seed=3)
        ratio = out / 0.8
        assert float(ratio.std()) > 0.005, cls.__name__
        assert float(ratio.diff(dim=-1).abs().max()) < 0.05, cls.__name__  # no edges


def test_crease_shading_stays_near_its_lines():
    img = flat(0.8, batch=1, size=200)
    effect = paper.CreaseShading(strength=1.0, lines=1, tilt_deg=0.0, width=(0.02, 0.02))
    params = effect.sample(1, 200, 200, torch.Generator().manual_seed(0), "cpu")
    params["normal"][:] = math.pi / 2  # a horizontal fold at y = 100
    params["offset"][:] = 100.0
    out = effect.apply(img, params)
    change = (out - img).abs().amax((1, 3))[0]
    assert float(change[95:106].max()) > 0.02
    assert float(change[:70].max()) == 0.0 and float(change[131:].max()) == 0.0


def test_wrinkles_and_texture_add_structure():
    for cls in (paper.Wrinkles, paper.PaperTexture):
        out, _ = run(make(cls), flat(0.9, size=128), seed=1)
        assert float(out.std()) > 0.004, cls.__name__
        assert float(out.mean()) < 0.9, cls.__name__  # both darken on average


def test_photocopy_is_grey(image):
    effect = paper.Photocopy(strength=1.0)
    out, params = run(effect, image)
    params["mix"][:] = 1.0
    out = effect.apply(image, params)
    assert float((out[:, 0] - out[:, 2]).abs().max()) < 1e-6
    ink = image.mean(1) < 0.3
    assert float(out[:, 0][ink].mean()) < 0.2  # ink stays dark


@pytest.mark.parametrize("cls", [overlays.HandwrittenNotes, overlays.Stamps,
                                 overlays.PrintedText], ids=lambda c: c.__name__)  # fmt: skip
def test_ink_overlays_only_darken(cls):
    img = flat(0.9, size=256)
    out, _ = run(make(cls), img, seed=7)
    assert bool((out <= img + 1e-6).all())
    assert float(((img - out).amax(1) > 0.1).float().mean()) > 0.0005


def test_barcode_draws_black_and_white_cells():
    img = flat(0.7, batch=1, size=256)
    out, _ = run(overlays.Barcode(strength=1.0, module=(0.02, 0.02)), img, seed=1)
    assert float((out < 0.05).float().mean()) > 0.005  # black modules
    assert float((out > 0.95).float().mean()) > 0.005 or float(out.max()) <= 0.7  # label


def test_effects_on_a_rendered_page():
    rng = np.random.default_rng(0)
    batch = Renderer().render(ecg_like(2), 500, [sample_page_spec(rng, dpi=60) for _ in range(2)])
    image, mask = batch["image"], batch["mask"].clone()
    chain = [
        paper.PaperTexture(),
        paper.Stains(),
        paper.Fading(),
        overlays.HandwrittenNotes(),
        overlays.Stamps(),
        sensor.DefocusBlur(),
        sensor.GaussianNoise(),
        sensor.JPEG(),
    ]
    g = torch.Generator().manual_seed(0)
    out = image
    for effect in chain:
        effect.p, effect.strength = 1.0, 0.8
        out = effect.apply(out, effect.sample(2, *image.shape[-2:], g, image.device))
    assert out.shape == image.shape and out.dtype == torch.float32
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert torch.equal(batch["mask"], mask)
    trace = mask > 0
    # the traces are still darker than the background after everything
    assert float(out.mean(1)[trace].mean()) < float(out.mean(1)[~trace].mean()) - 0.2


# ---------------------------------------------------------------- hash noise


def test_hash_noise_is_deterministic_and_seed_dependent():
    seed = torch.tensor([1, 2, 1])
    a = noise.hash_normal(seed, 3, 64, 80)
    assert torch.equal(a, noise.hash_normal(seed, 3, 64, 80))
    assert torch.equal(a[0], a[2])  # same page seed, same field
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0, 0], a[0, 1])  # channels independent
    u = noise.hash_uniform(seed, 1, 64, 80)
    assert torch.equal(u, noise.hash_uniform(seed, 1, 64, 80))


def test_hash_noise_rows_do_not_depend_on_blocking():
    seed = torch.tensor([7, 8])
    whole = noise.normal_rows(seed, 3, 0, 50, 40)
    parts = torch.cat(
        [noise.normal_rows(seed, 3, 0, 17, 40), noise.normal_rows(seed, 3, 17, 50, 40)], 2
    )
    assert torch.equal(whole, parts)
    fast = noise.fast_normal_rows(seed, 2, 0, 50, 40)
    fast_parts = torch.cat([noise.fast_normal_rows(seed, 2, 0, 9, 40),
                            noise.fast_normal_rows(seed, 2, 9, 50, 40)], 2)  # fmt: skip
    assert torch.equal(fast, fast_parts)


@pytest.mark.parametrize("fn", [noise.normal_rows, noise.fast_normal_rows], ids=["hash", "fast"])
def test_normal_fields_are_standard_normal(fn):
    z = fn(torch.tensor([3, 4]), 3, 0, 256, 256)
    assert abs(float(z.mean())) < 0.01
    assert abs(float(z.std()) - 1.0) < 0.01
    assert abs(float((z.abs() < 1).float().mean()) - 0.6827) < 0.005
    x = z.flatten(0, 1)
    for a, b in ((x[:, :, :-1], x[:, :, 1:]), (x[:, :-1], x[:, 1:])):  # neighbours
        assert abs(float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])) < 0.01


@pytest.mark.parametrize("fn", [noise.uniform_rows, noise.fast_uniform_rows], ids=["hash", "fast"])
def test_uniform_fields_are_uniform(fn):
    u = fn(torch.tensor([5]), 2, 0, 256, 256)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.005
    assert abs(float(u.std()) - 1 / math.sqrt(12)) < 0.005
    hist = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert float((hist - 0.1).abs().max()) < 0.005


def test_hash_integers_stay_in_32_bits():
    h = noise.hash_rows(torch.tensor([0, 2**31 - 2]), 2, 0, 64, 64)
    assert h.dtype == torch.int64
    assert int(h.min()) >= 0 and int(h.max()) < 2**32
    assert int(h.max()) > 2**31  # the top bit is used


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hash_noise_is_identical_on_cuda():
    seed = torch.tensor([11, 12])
    assert torch.equal(noise.hash_rows(seed, 2, 0, 32, 48),
                       noise.hash_rows(seed.cuda(), 2, 0, 32, 48).cpu())  # fmt: skip
    torch.testing.assert_close(noise.fast_normal_rows(seed, 3, 0, 32, 48),
                               noise.fast_normal_rows(seed.cuda(), 3, 0, 32, 48).cpu())  # fmt: skip
    img = page_like()
    for cls in EFFECTS:
        effect = make(cls)
        params = effect.sample(2, H, W, torch.Generator().manual_seed(0), "cpu")
        cpu = effect.apply(img, params)
        gpu = effect.apply(img.cuda(), {k: v.cuda() for k, v in params.items()}).cpu()
        torch.testing.assert_close(gpu, cpu, atol=2e-3, rtol=0, msg=cls.__name__)


# ---------------------------------------------------------------- in place, in row blocks


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_apply_in_place_matches_apply_and_apply_leaves_its_input(cls, image):
    effect = make(cls)
    _, params = run(effect, image, seed=7)
    before = image.clone()
    out = effect.apply(image, params)
    assert torch.equal(image, before)
    work = image.clone()
    assert effect.apply_(work, params) is work
    assert torch.equal(work, out)


@pytest.mark.parametrize("cls", EFFECTS, ids=lambda c: c.__name__)
def test_row_blocks_do_not_change_the_result(cls, image, monkeypatch):
    """Tiny blocks (many of them, halos crossing block edges, pages gathered and scattered
    per block) give the pixels of one block per image."""
    effect = make(cls)
    _, params = run(effect, image, seed=8)
    params["active"] = torch.tensor([True, False])
    whole = effect.apply(image, params)
    monkeypatch.setattr(noise, "CPU_BLOCK", 3 * W * 5)
    assert len(noise.row_blocks(image.shape, image.device)) > 10
    torch.testing.assert_close(effect.apply(image, params), whole, atol=1e-6, rtol=0)
