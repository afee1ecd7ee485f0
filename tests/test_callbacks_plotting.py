"""The figures: what history.csv's losses and metrics and metrics.jsonl's sample quality show."""

import math

import matplotlib.pyplot as plt

from keras_anime_gan.callbacks.plotting import history_figure, metrics_figure, plot_history, plot_metrics


def _lines(axis):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines()}


def test_the_history_figure_shows_each_column_where_it_has_values(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss,swd,val_d_loss\n0,0.5,1.0,NA,NA\n1,0.4,1.1,9.0,NA\n2,0.3,1.2,7.5,NA\n"
                    "3,0.2,1.3,,NA\n")
    figure = history_figure(str(path))
    losses, swd = figure.axes  # the empty val_d_loss column gets no panel
    lines = _lines(losses)
    assert lines["G loss"] == ([1, 2, 3, 4], [1.0, 1.1, 1.2, 1.3]) and lines["D loss"] == ([1, 2, 3, 4], [0.5, 0.4, 0.3, 0.2])
    (only,) = swd.get_lines()  # epochs 2 and 3 (1-based), where swd was computed
    assert list(only.get_xdata()) == [2, 3] and list(only.get_ydata()) == [9.0, 7.5] and swd.get_ylabel() == "swd"
    plt.close(figure)
    assert plot_history(str(path), str(tmp_path / "losses.png"))
    assert (tmp_path / "losses.png").read_bytes()[:4] == b"\x89PNG"
    path.write_text("epoch,d_loss,g_loss\n")  # no epoch yet: nothing to draw
    assert history_figure(str(path)) is None
    assert not plot_history(str(path), str(tmp_path / "empty.png")) and not (tmp_path / "empty.png").exists()


def test_the_metrics_figure_shows_each_headline_metric_with_its_noise_floor(tmp_path):
    records = [{"epoch": epoch, "results": {"swd": 10.0 / epoch, "swd_64": 1.0}, "noise_floor": {"swd_floor": 1.5}}
               for epoch in (1, 2, 3)]
    figure = metrics_figure(None, records)
    (axis,) = figure.axes  # swd only: per-level keys such as swd_64 stay in the file
    lines = _lines(axis)
    xs, ys = lines["swd"]
    assert xs == [1, 2, 3] and all(math.isclose(a, b) for a, b in zip(ys, [10.0, 5.0, 10.0 / 3]))
    assert set(lines["real vs real (noise floor)"][1]) == {1.5} and axis.get_ylabel() == "SWD x1e3"
    plt.close(figure)
    assert plot_metrics(None, str(tmp_path / "metrics.png"), records=records)
    assert (tmp_path / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_metrics(str(tmp_path / "missing.jsonl"), str(tmp_path / "none.png"))
    assert not plot_metrics(None, str(tmp_path / "none.png"), records=[{"results": {"swd": 1.0}}])  # no epoch
