"""history.csv: HistoryLog writes it, `history_rows` is its one reader, for a resumed run's rows and
for the loss plot's columns (`history_columns`)."""

import csv
import math

import numpy as np

from keras_anime_gan.callbacks.history import HistoryLog, history_columns, history_rows
from keras_anime_gan.callbacks.plotting import plot_history


def test_history_log_keeps_columns_that_appear_later_and_rebuilds_from_rows(tmp_path):
    path = tmp_path / "history.csv"
    history = HistoryLog(str(path))
    history.set_params({"steps": 2, "epochs": 3})
    history.on_train_begin()
    for epoch, logs in enumerate([{"d_loss": 0.5, "g_loss": 1.0}, {"d_loss": 0.4, "g_loss": 1.1, "swd": 9.0},
                                  {"d_loss": 0.3, "g_loss": 1.2}]):
        history.on_epoch_begin(epoch)
        history.on_train_batch_end(1, logs)
        history.on_epoch_end(epoch, logs)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "d_loss", "g_loss", "swd"]
    assert [row["swd"] for row in rows] == ["", "9.0", ""] and [row["epoch"] for row in rows] == ["0", "1", "2"]
    values = history_columns(history_rows(str(path)))
    assert values["d_loss"] == [0.5, 0.4, 0.3] and np.isnan(values["swd"][0])
    assert history_rows(str(path)) == history.rows  # what a checkpoint holds, read back from the file
    assert plot_history(str(path), str(tmp_path / "losses.png"))
    # A resumed run starts from the rows its checkpoint holds, whatever the file says.
    resumed = HistoryLog(str(path), rows=history.rows[:1])
    resumed.on_train_begin()
    assert history_columns(history_rows(str(path)))["epoch"] == [0.0]
    assert history_rows(str(path)) == [{"epoch": 0, "d_loss": 0.5, "g_loss": 1.0}]


def test_the_one_reader_gives_a_resume_its_rows_and_the_plot_its_columns(tmp_path):
    # What keras.callbacks.CSVLogger leaves after a run resumed from epoch 1 appended to its file: "NA"
    # cells, an all-"NA" val_ column, epochs 1 and 2 written twice, and a line a killed writer left.
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss,swd,val_d_loss\n"
                    "0,0.5,1.0,NA,NA\n"
                    "1,0.9,0.9,,NA\n"
                    "2,0.8,0.8,8.0,NA\n"
                    "1,0.4,1.1,9.0,NA\n"
                    "2,0.3,1.2,x,NA\n"
                    ",0.1\n")
    first, second, third = ({"epoch": 0, "d_loss": 0.5, "g_loss": 1.0}, {"epoch": 1, "d_loss": 0.4, "g_loss": 1.1, "swd": 9.0},
                            {"epoch": 2, "d_loss": 0.3, "g_loss": 1.2})
    # Resume: one row per epoch (the last written wins), empty, "NA" and other non-number cells left out.
    assert history_rows(str(path)) == [first, second, third]
    assert history_rows(str(path), before_epoch=2) == [first, second]
    assert history_rows(str(path), before_epoch=0) == []
    # The plot: every column with a value, in the header's order, NaN where an epoch has none.
    columns = history_columns(history_rows(str(path)))
    assert list(columns) == ["epoch", "d_loss", "g_loss", "swd"]
    assert columns["epoch"] == [0.0, 1.0, 2.0] and columns["d_loss"] == [0.5, 0.4, 0.3]
    assert math.isnan(columns["swd"][0]) and columns["swd"][1] == 9.0 and math.isnan(columns["swd"][2])
    # No file: no rows, no columns (no plot).
    assert history_rows(str(tmp_path / "missing.csv")) == [] and history_columns([]) == {}
    assert not plot_history(str(tmp_path / "missing.csv"), str(tmp_path / "nothing.png"))
