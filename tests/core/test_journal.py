"""The append-only state log: records read back in order, whole or not at all, damage named."""

import os

import numpy as np
import pytest

from tfrobust.core.journal import Journal
from tfrobust.errors import TfrobustError


def test_records_come_back_in_order_with_their_arrays_and_meta(tmp_path):
    journal = Journal(tmp_path / "log")
    assert journal.records() == []
    journal.append({"batch": 0, "counts": {"forward": 3}}, y_pred=np.array([1, 2, 3]))
    journal.append({"batch": 1}, x_adv=np.ones((2, 4, 4, 1), np.float32), index=np.array([5, 7]))
    records = Journal(tmp_path / "log").records()  # a fresh reader, as a re-run has
    assert [meta for meta, _ in records] == [{"batch": 0, "counts": {"forward": 3}}, {"batch": 1}]
    np.testing.assert_array_equal(records[0][1]["y_pred"], [1, 2, 3])
    assert records[1][1]["x_adv"].dtype == np.float32 and records[1][1]["x_adv"].shape == (2, 4, 4, 1)
    assert sorted(os.listdir(tmp_path / "log")) == ["000000.npz", "000001.npz"]  # no temporary left behind


def test_only_a_complete_prefix_counts_and_appending_continues_it(tmp_path):
    journal = Journal(tmp_path)
    for i in range(3):
        journal.append({"i": i})
    os.remove(tmp_path / "000001.npz")
    reread = Journal(tmp_path)
    assert [meta["i"] for meta, _ in reread.records()] == [0]
    reread.append({"i": "new"})  # the orphaned record 2 is dropped, never joined to the new prefix
    assert [meta["i"] for meta, _ in Journal(tmp_path).records()] == [0, "new"]


def test_a_damaged_record_is_an_error_naming_it(tmp_path):
    journal = Journal(tmp_path)
    journal.append({"i": 0})
    (tmp_path / "000000.npz").write_bytes(b"not a zip file")
    with pytest.raises(TfrobustError, match=r"000000\.npz is damaged.*--restart"):
        Journal(tmp_path).records()


def test_children_have_plain_folder_names_and_clear_removes_everything(tmp_path):
    root = Journal(tmp_path / "state")
    child = root.child("cnn@1:saved_model").child("pgd-20")
    child.append({"i": 0})
    assert os.path.isfile(tmp_path / "state" / "cnn@1_saved_model" / "pgd-20" / "000000.npz")
    with pytest.raises(TfrobustError, match="plain file name"):
        root.child("..")
    root.clear()
    assert not (tmp_path / "state").exists()
