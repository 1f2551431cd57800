"""`maddpg_tf.files`: a result file is replaced whole or not at all."""

import json
import os

import numpy as np
import pytest

from maddpg_tf import files


def test_write_json_writes_sorted_keys_and_strs_what_json_lacks(tmp_path):
  path = str(tmp_path / "r.json")
  files.write_json(path, {"b": np.float32(0.5), "a": [1, 2]})
  assert json.loads(open(path).read()) == {"a": [1, 2], "b": "0.5"}
  assert open(path).read().index('"a"') < open(path).read().index('"b"')
  assert os.listdir(tmp_path) == ["r.json"]  # no temporary left


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / "r.txt")
  files.write_text(path, "old")
  with pytest.raises(RuntimeError, match="disk on fire"):
    with files.replacing(path) as temporary:
      with open(temporary, "w") as handle:
        handle.write("half of the new")
      raise RuntimeError("disk on fire")
  assert open(path).read() == "old"
  assert os.listdir(tmp_path) == ["r.txt"]


def test_the_temporary_keeps_a_suffix_for_writers_that_read_the_format_from_it(tmp_path):
  path = str(tmp_path / "plot.png")
  with files.replacing(path, suffix=".png") as temporary:
    assert temporary.endswith(".png") and os.path.dirname(temporary) == str(tmp_path)
    with open(temporary, "wb") as handle:
      handle.write(b"\x89PNG")
  assert open(path, "rb").read() == b"\x89PNG" and os.listdir(tmp_path) == ["plot.png"]


def test_write_text_keeps_csv_line_ends_when_asked(tmp_path):
  path = str(tmp_path / "t.csv")
  files.write_text(path, "a,b\r\n1,2\r\n", newline="")
  assert open(path, "rb").read() == b"a,b\r\n1,2\r\n"
