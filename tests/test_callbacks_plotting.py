"""The figures: history.csv's losses and metrics, metrics.jsonl's sample quality."""

from keras_anime_gan.callbacks.plotting import plot_history, plot_metrics


def test_plot_history_draws_a_csv_logger_file_with_gaps(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss,swd,val_d_loss\n0,0.5,1.0,NA,NA\n1,0.4,1.1,9.0,NA\n2,0.3,1.2,,NA\n")
    assert plot_history(str(path), str(tmp_path / "losses.png"))
    assert (tmp_path / "losses.png").read_bytes()[:4] == b"\x89PNG"
    path.write_text("epoch,d_loss,g_loss\n")  # no epoch yet: nothing to draw
    assert not plot_history(str(path), str(tmp_path / "empty.png")) and not (tmp_path / "empty.png").exists()


def test_plot_metrics_draws_each_headline_metric_with_its_noise_floor(tmp_path):
    records = [{"epoch": epoch, "results": {"swd": 10.0 / epoch, "swd_64": 1.0}, "noise_floor": {"swd_floor": 1.5}}
               for epoch in (1, 2, 3)]
    assert plot_metrics(None, str(tmp_path / "metrics.png"), records=records)
    assert (tmp_path / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_metrics(str(tmp_path / "missing.jsonl"), str(tmp_path / "none.png"))
    assert not plot_metrics(None, str(tmp_path / "none.png"), records=[{"results": {"swd": 1.0}}])  # no epoch
