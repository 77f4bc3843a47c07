"""comp448.viz: what is drawn is the data given (read back from the matplotlib artists)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from comp448 import viz  # noqa: E402

HIST = [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_dice": 0.5, "val_iou": 0.3, "lr": 1e-3},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_dice": 0.7, "val_iou": 0.55, "lr": 5e-4}]


def test_plot_curves_draws_the_history(tmp_path):
    fig = viz.plot_curves(HIST, path=tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    ax_loss, ax_metric = fig.axes
    lines = {l.get_label(): l for l in ax_loss.get_lines()}
    assert set(lines) == {"train_loss", "val_loss"}
    np.testing.assert_allclose(lines["train_loss"].get_ydata(), [0.9, 0.5])
    metric = {l.get_label(): list(l.get_ydata()) for l in ax_metric.get_lines()}
    assert metric == {"val_dice": [0.5, 0.7], "val_iou": [0.3, 0.55]}
    only = viz.plot_curves(HIST, keys=["val_dice"])
    assert [l.get_label() for l in only.axes[1].get_lines()] == ["val_dice"]


def test_plot_curves_errors():
    with pytest.raises(ValueError, match="history"):
        viz.plot_curves([])
    with pytest.raises(ValueError, match="keys"):
        viz.plot_curves(HIST, keys=["val_hd95"])


def test_plot_predictions_2d_rgb_and_3d(tmp_path):
    img = torch.rand(3, 1, 16, 16)
    tgt = (torch.rand(3, 1, 16, 16) > 0.5).float()
    prob = torch.rand(3, 1, 16, 16)
    fig = viz.plot_predictions(img, tgt, prob, n=2, path=tmp_path / "p.png")
    assert len(fig.axes) == 6 and (tmp_path / "p.png").is_file()
    np.testing.assert_allclose(fig.axes[2].get_images()[0].get_array(), prob[0, 0].numpy())
    np.testing.assert_allclose(fig.axes[1].get_images()[0].get_array(), tgt[0, 0].numpy())
    fig = viz.plot_predictions(img, tgt, prob, threshold=0.5)
    assert np.array_equal(fig.axes[2].get_images()[0].get_array(), prob[0, 0].numpy() > 0.5)
    rgb = viz.plot_predictions(torch.rand(1, 3, 8, 8), tgt[:1, :, :8, :8], prob[:1, :, :8, :8])
    assert rgb.axes[0].get_images()[0].get_array().shape == (8, 8, 3)
    vol = torch.rand(1, 1, 5, 8, 8)
    probs2 = torch.softmax(torch.randn(1, 2, 5, 8, 8), 1)          # (B, C, D, H, W): argmax of the middle slice
    fig = viz.plot_predictions(vol, torch.zeros(1, 5, 8, 8, dtype=torch.long), probs2)
    np.testing.assert_array_equal(fig.axes[2].get_images()[0].get_array(), probs2[0, :, 2].argmax(0).numpy())
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), vol[0, 0, 2].numpy())


def test_plot_predictions_errors():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="images must be"):
        viz.plot_predictions(torch.rand(8, 8), x, x)
    with pytest.raises(ValueError, match="same batch size"):
        viz.plot_predictions(x, x[:1], x)
    with pytest.raises(ValueError, match="n must be"):
        viz.plot_predictions(x, x, x, n=0)


def test_plot_throughput_bars(tmp_path):
    fig = viz.plot_throughput({"plain": 357.0, "fast": 1216.0}, path=tmp_path / "t.png")
    heights = [b.get_height() for b in fig.axes[0].patches]
    assert heights == [357.0, 1216.0]
    with pytest.raises(ValueError, match="results"):
        viz.plot_throughput({})
