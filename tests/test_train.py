"""Training: the loss goes down, densification keeps bindings valid, checkpoints resume, eval reports."""

import copy

import pytest
import torch

from perse.avatar import Avatar, load_avatar
from perse.errors import PerseError
from perse.train.densify import BindingDensifier, DensifyConfig
from perse.train.evaluate import evaluate
from perse.train.losses import psnr, ssim, ssim_map
from perse.train.selfdata import SelfRenderedDataset
from perse.train.trainer import Trainer, TrainConfig
from tiny_models import tiny_categories, tiny_head


def _teacher() -> Avatar:
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=700, seed=5)
    g = torch.Generator().manual_seed(1)
    a.gaussians_params["color_logit"].data = 2 * torch.randn(a.num_gaussians, 3, generator=g)
    return a.eval()


def _config(**kw) -> TrainConfig:
    cfg = TrainConfig(steps=40, backend="cpu", checkpoint_every=0, **kw)
    cfg.densify = DensifyConfig(start_step=10**9)
    return cfg


@pytest.fixture(scope="module")
def dataset():
    return SelfRenderedDataset(_teacher(), num_frames=4, size=40, backend="cpu")


def test_ssim_and_psnr_known_answers():
    a = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(a, 1 - a)) < 0.2
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=0.01)


def test_ssim_separable_blur_equals_the_2d_window():
    """The row-then-column blur of `ssim_map` against SSIM computed with the full 11x11 window."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(24, 30, 3, generator=g), torch.rand(24, 30, 3, generator=g)
    x = torch.arange(11, dtype=torch.float32) - 5
    k = torch.exp(-x**2 / (2 * 1.5**2))
    k = k / k.sum()
    w = (k[:, None] * k[None, :]).expand(3, 1, 11, 11)
    blur = lambda t: F.conv2d(t.permute(2, 0, 1)[None], w, padding=5, groups=3)[0]  # noqa: E731
    mx, my = blur(a), blur(b)
    sxx, syy, sxy = blur(a * a) - mx**2, blur(b * b) - my**2, blur(a * b) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    want = (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean(dim=0)
    assert torch.allclose(ssim_map(a, b), want, atol=1e-5)


def test_training_reduces_the_photometric_loss(dataset):
    student = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=700, seed=5)
    trainer = Trainer(student, dataset, _config())
    first = [trainer.train_step()["photo"] for _ in range(5)]
    for _ in range(30):
        trainer.train_step()
    last = [trainer.train_step()["photo"] for _ in range(5)]
    assert sum(last) / 5 < 0.7 * sum(first) / 5


def test_densification_keeps_bindings_and_optimizer_in_sync(dataset):
    student = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=500, seed=5)
    cfg = _config()
    cfg.densify = DensifyConfig(start_step=5, stop_step=100, interval=5, grad_threshold=0.0)
    trainer = Trainer(student, dataset, cfg)
    for _ in range(5):
        trainer.train_step()
    n = trainer.avatar.num_gaussians
    assert n > 500  # every visible Gaussian exceeded the zero threshold: clones and splits
    F = trainer.avatar.head.faces.shape[0]
    assert int(trainer.avatar.parent.max()) < F and trainer.avatar.parent.shape[0] == n
    for group in trainer.optimizer.param_groups[:7]:
        p = group["params"][0]
        assert p.shape[0] == n
        assert trainer.optimizer.state[p]["exp_avg"].shape == p.shape
    trainer.train_step()  # and training goes on after the resize


def test_pruning_spares_gaussians_visible_in_some_look():
    a = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300, seed=0)
    dens = BindingDensifier(DensifyConfig(prune_opacity=0.05), a.num_gaussians)
    max_opacity = torch.full((300,), 0.5)
    max_opacity[:10] = 0.01  # transparent under every look
    out = dens.densify_and_prune(a, torch.full((300,), 1e-4), max_opacity, torch.Generator())
    assert out["pruned"] == 10 and a.num_gaussians == 290


def test_checkpoint_resume_continues_identically(dataset, tmp_path):
    cfg = _config()
    student = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=400, seed=7)
    a = Trainer(copy.deepcopy(student), dataset, cfg)
    for _ in range(6):
        a.train_step()
    ckpt = tmp_path / "run.ckpt"
    a.save_checkpoint(ckpt)
    b = Trainer.from_checkpoint(ckpt, dataset)
    assert b.step == 6
    la = [a.train_step()["loss"] for _ in range(3)]
    lb = [b.train_step()["loss"] for _ in range(3)]
    assert la == pytest.approx(lb, rel=1e-4)


def test_run_writes_the_avatar_and_interrupt_saves_a_checkpoint(dataset, tmp_path):
    cfg = _config()
    cfg.steps = 8
    student = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300, seed=7)
    trainer = Trainer(student, dataset, cfg)
    out = trainer.run(tmp_path / "a.perse", progress=False)
    avatar = load_avatar(out)
    assert avatar.meta["training"]["steps"] == 8 and avatar.num_gaussians == 300

    trainer2 = Trainer(Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300), dataset, cfg)
    import signal

    def interrupt(step, stats):
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        trainer2.run(tmp_path / "b.perse", tmp_path / "b.ckpt", progress=False, on_step=interrupt)
    assert (tmp_path / "b.ckpt").exists() and not (tmp_path / "b.perse").exists()
    assert Trainer.from_checkpoint(tmp_path / "b.ckpt", dataset).step == 3


def test_corrupt_checkpoint_is_a_clear_error(dataset, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"junk")
    with pytest.raises(PerseError, match="cannot resume"):
        Trainer.from_checkpoint(bad, dataset)


def test_evaluate_reports_high_psnr_for_the_teacher_itself(dataset):
    report = evaluate(dataset.avatar, dataset, backend="cpu")
    assert report["frames"] == 4 and report["psnr"] > 40


def test_densification_is_recorded_in_the_training_summary(dataset):
    student = Avatar.initialize(tiny_head(), tiny_categories(), num_gaussians=300, seed=5)
    cfg = _config()
    cfg.densify = DensifyConfig(start_step=2, stop_step=100, interval=2, grad_threshold=0.0)
    trainer = Trainer(student, dataset, cfg)
    for _ in range(4):
        trainer.train_step()
    events = trainer.summary()["densify"]
    assert [e["step"] for e in events] == [2, 4]
    assert events[-1]["densify"]["total"] == trainer.avatar.num_gaussians


def test_a_short_run_stops_densifying_two_thirds_in():
    from perse.train.trainer import DENSIFY_SHARE, TrainConfig

    cpu = TrainConfig.preset("cpu")
    draft = cpu.with_steps(2500)
    assert draft.steps == 2500 and draft.densify.stop_step == int(DENSIFY_SHARE * 2500) < 2500
    assert cpu.with_steps(6000).densify.stop_step == cpu.densify.stop_step == 4000   # the preset's own ratio
    assert cpu.with_steps(12000).densify.stop_step == 4000                             # never later than the preset
    assert cpu.steps == 6000 and cpu.densify.stop_step == 4000                        # the preset itself is untouched
