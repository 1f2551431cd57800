"""Frames of LBF and RWARE states (pixel colours at known cells) and the video / PNG / summary writers."""

import os

import gymnasium as gym
import imageio.v2 as imageio_v2
import imageio.v3 as iio
import lbforaging  # noqa: F401  (registers Foraging-*-v3)
import numpy as np
import pytest
import rware  # noqa: F401  (registers rware-*-v2)
from rware.warehouse import Direction

from maddpg_tf.media import rendering, video
from maddpg_tf.media.rendering import (AGENT_COLOURS, BACKGROUND, CARRIED_OUTLINE, FOOD, GOAL, HEADING, REQUESTED_SHELF, SHELF, SHELF_SLOT, agent_colour)

CELL = 48


def colour_at(frame, xy):
  x, y = xy
  return tuple(int(v) for v in frame[y, x])


def mask_of(frame, colour):
  return np.all(frame == np.asarray(colour, np.uint8), axis=-1)


def cell_interior(layout, row, col):
  """Pixel slice of a cell without its grid line."""
  x0, y0, x1, y1 = layout.cell_box(row, col)
  return slice(y0 + 1, y1), slice(x0 + 1, x1)


# --------------------------------------------------------------------------------------------------
# LBF

def lbf_env(gym_id="Foraging-8x8-2p-2f-coop-v3"):
  env = gym.make(gym_id, disable_env_checker=True).unwrapped
  env.reset(seed=0)
  return env


def hand_built_lbf(gym_id="Foraging-8x8-2p-2f-coop-v3"):
  """Food 3 at (row 2, col 5) and 1 at (6, 1); agent 0 (level 2) at (0, 0), agent 1 (level 1) at (4, 7).
  No position is symmetric to another, so a row/col swap is caught."""
  env = lbf_env(gym_id)
  env.field[:] = 0
  env.field[2, 5] = 3
  env.field[6, 1] = 1
  env.players[0].position, env.players[0].level = (0, 0), 2
  env.players[1].position, env.players[1].level = (4, 7), 1
  return env


def test_lbf_frame_has_agents_and_food_at_their_cells():
  env = hand_built_lbf()
  frame = rendering.render_lbf(env, cell=CELL)
  layout = rendering.layout_for(env, cell=CELL)
  assert frame.shape == (layout.height, layout.width, 3) == (layout.header_height + 8 * CELL + 1, 8 * CELL + 1, 3)
  assert frame.dtype == np.uint8
  assert layout.header_height == 3 * rendering.HEADER_LINE + 2 * rendering.HEADER_PAD

  # A point off the text on each shape shows the shape's colour.
  assert colour_at(frame, layout.point(0, 0, 0.22, 0.22)) == agent_colour(0) == AGENT_COLOURS[0]
  assert colour_at(frame, layout.point(4, 7, 0.22, 0.22)) == agent_colour(1)
  assert colour_at(frame, layout.point(2, 5, 0.3, 0.3)) == FOOD
  assert colour_at(frame, layout.point(6, 1, -0.3, 0.3)) == FOOD
  # The cell's corner is outside the disc and the square.
  assert colour_at(frame, layout.point(2, 5, 0.45, 0.45)) == BACKGROUND
  assert colour_at(frame, layout.point(4, 7, 0.45, 0.45)) == BACKGROUND

  # Each colour appears only in its own cells, and fills a good part of them.
  grid = frame[layout.header_height:]
  top = layout.header_height
  for colour, cells in ((FOOD, [(2, 5), (6, 1)]), (agent_colour(0), [(0, 0)]), (agent_colour(1), [(4, 7)])):
    found = mask_of(frame, colour)
    expected = np.zeros_like(found)
    for r, c in cells:
      ys, xs = cell_interior(layout, r, c)
      expected[ys, xs] = True
      assert found[ys, xs].mean() > 0.35, (colour, r, c)
    assert not (found & ~expected)[top:].any(), colour
  assert grid.shape[0] == 8 * CELL + 1

  # Every other cell is empty: background inside its grid lines.
  for r in range(8):
    for c in range(8):
      if (r, c) not in [(2, 5), (6, 1), (0, 0), (4, 7)]:
        ys, xs = cell_interior(layout, r, c)
        assert mask_of(frame[ys, xs], BACKGROUND).all(), (r, c)


def test_lbf_partial_sight_outlines_each_agents_view():
  env = hand_built_lbf("Foraging-2s-8x8-2p-2f-coop-v3")
  assert env.sight == 2
  frame = rendering.render_lbf(env, cell=CELL)
  layout = rendering.layout_for(env, cell=CELL)
  # Agent 1 at (4, 7) sees rows 2..6, cols 5..7: the outline starts at cell (2, 5)'s corner and ends
  # at the field's right edge.
  x0, y0, _, _ = layout.cell_box(2, 5)
  _, _, x1, y1 = layout.cell_box(6, 7)
  assert colour_at(frame, (x0, y0 + 10)) == agent_colour(1)
  assert colour_at(frame, (x0 + 10, y1 - 1)) == agent_colour(1)
  assert colour_at(frame, (x1 - 1, y0 + 70)) == agent_colour(1)
  # Agent 0 at (0, 0) sees rows 0..2, cols 0..2: the outline's right side is the right edge of col 2.
  _, _, xr, _ = layout.cell_box(1, 2)
  assert colour_at(frame, (xr - 1, layout.point(1, 2)[1])) == agent_colour(0)
  # Full sight: no outline, so the same edge pixel is a grid line.
  full = rendering.render_lbf(hand_built_lbf(), cell=CELL)
  assert colour_at(full, (xr - 1, layout.point(1, 2)[1])) == BACKGROUND


def test_header_lines_name_step_actions_and_rewards():
  assert rendering.header_lines(2, 7, [5, 1], [0.25, -1.0]) == [
    "step 7    team reward -0.750",
    "agent 0  LOAD   reward +0.250",
    "agent 1  NORTH  reward -1.000",
  ]
  assert rendering.header_lines(2, None) == ["step -", "agent 0  -      reward -", "agent 1  -      reward -"]
  assert rendering.header_lines(1, 0, [4], None, rendering.RWARE_ACTION_NAMES) == [
    "step 0", "agent 0  TOGGLE_LOAD  reward -"]
  # rware with message bits: each agent's action is [move, bit, ...].
  assert rendering.header_lines(2, 1, np.array([[2, 1], [0, 0]]), None, rendering.RWARE_ACTION_NAMES)[1:] == [
    "agent 0  LEFT         reward -", "agent 1  NOOP         reward -"]
  assert rendering.LBF_ACTION_NAMES == tuple(a.name for a in lbforaging.foraging.environment.Action)
  assert rendering.RWARE_ACTION_NAMES == tuple(a.name for a in rware.warehouse.Action)


def test_header_text_changes_only_the_header():
  env = hand_built_lbf()
  layout = rendering.layout_for(env, cell=CELL)
  a = rendering.render_lbf(env, step=3, actions=[0, 0], rewards=[0.0, 0.0], cell=CELL)
  b = rendering.render_lbf(env, step=4, actions=[5, 1], rewards=[0.5, 0.0], cell=CELL)
  differ = np.any(a != b, axis=-1)
  assert differ[:layout.header_height].any()
  assert not differ[layout.header_height:].any()


def test_render_dispatches_on_type_and_unwraps():
  wrapped = gym.make("Foraging-8x8-2p-2f-coop-v3", disable_env_checker=True)
  wrapped.reset(seed=1)
  assert np.array_equal(rendering.render(wrapped, step=1), rendering.render_lbf(wrapped.unwrapped, step=1))
  with pytest.raises(ValueError, match="cannot render a builtins.str: supported are lbforaging's"):
    rendering.render("not an env")
  with pytest.raises(ValueError, match="render_rware takes an rware Warehouse, not ForagingEnv"):
    rendering.render_rware(wrapped)


@pytest.mark.parametrize("kwargs, message", [
  ({"actions": [1]}, r"actions has 1 entries: expected one per agent \(2\)"),
  ({"actions": [1, 6]}, r"action 6 is not allowed: expected an integer in \[0, 5\]"),
  ({"actions": [1, 0.5]}, r"action 0.5 is not allowed"),
  ({"rewards": [1.0, 2.0, 3.0]}, r"rewards has 3 entries"),
  ({"cell": 4}, r"cell=4 is not allowed: expected an integer number of pixels in \[8, 512\]"),
  ({"cell": 32.0}, r"cell=32.0 is not allowed"),
])
def test_render_bad_input(kwargs, message):
  with pytest.raises(ValueError, match=message):
    rendering.render(hand_built_lbf(), **kwargs)


def test_lbf_episode_frames_share_one_size():
  env = lbf_env()
  rng = np.random.default_rng(0)
  shapes = {rendering.render(env).shape}
  for _ in range(10):
    actions = rng.integers(0, 6, size=2)
    _, rewards, done, _, _ = env.step(actions.tolist())
    shapes.add(rendering.render(env, actions=actions, rewards=rewards).shape)
    if done:
      break
  assert shapes == {(rendering.layout_for(env).height, rendering.layout_for(env).width, 3)}


# --------------------------------------------------------------------------------------------------
# RWARE

def hand_built_rware():
  """rware-tiny-2ag with: agent 0 at (row 0, col 1) facing RIGHT, empty-handed; agent 1 at (row 3,
  col 0) facing UP, carrying shelf B (taken from its slot); shelf A requested, nothing else is."""
  env = gym.make("rware-tiny-2ag-v2", disable_env_checker=True).unwrapped
  env.reset(seed=0)
  shelves = {(s.y, s.x): s for s in env.shelfs}
  a, b = shelves[(1, 1)], shelves[(2, 7)]
  env.request_queue = [a]
  agent0, agent1 = env.agents
  agent0.x, agent0.y, agent0.dir, agent0.carrying_shelf = 1, 0, Direction.RIGHT, None
  agent1.x, agent1.y, agent1.dir, agent1.carrying_shelf = 0, 3, Direction.UP, b
  b.x, b.y = 0, 3
  env._recalc_grid()  # pylint: disable=protected-access
  return env, a, b


def test_rware_frame_has_shelves_agents_goals_at_their_cells():
  env, _, _ = hand_built_rware()
  frame = rendering.render_rware(env, cell=CELL)
  layout = rendering.layout_for(env, cell=CELL)
  rows, cols = env.grid_size
  assert (rows, cols) == (11, 10)
  assert frame.shape == (layout.header_height + rows * CELL + 1, cols * CELL + 1, 3)

  # Requested shelf A at (1, 1), a plain shelf at (1, 2), B's empty slot at (2, 7).
  assert colour_at(frame, layout.point(1, 1, 0.3, 0.3)) == REQUESTED_SHELF
  assert colour_at(frame, layout.point(1, 2, 0.3, 0.3)) == SHELF
  assert colour_at(frame, layout.point(1, 2, 0.47, 0.47)) == SHELF_SLOT  # the slot around a shelf
  ys, xs = cell_interior(layout, 2, 7)
  assert mask_of(frame[ys, xs], SHELF_SLOT).all()
  # Exactly one requested shelf is drawn.
  requested = mask_of(frame, REQUESTED_SHELF)[layout.header_height:]
  ys, xs = cell_interior(layout, 1, 1)
  assert requested.sum() == mask_of(frame[ys, xs], REQUESTED_SHELF).sum() > 0.6 * CELL * CELL

  # Goals (x, y) = (4, 10), (5, 10): dark cells in the bottom row.
  assert sorted(env.goals) == [(4, 10), (5, 10)]
  for x, y in env.goals:
    ys, xs = cell_interior(layout, y, x)
    assert mask_of(frame[ys, xs], GOAL).all()

  # Agent 0 at (0, 1) faces right: the heading triangle is right of centre, the disc on the left.
  assert colour_at(frame, layout.point(0, 1, 0.22, 0.22)) == agent_colour(0)
  assert colour_at(frame, layout.point(0, 1, 0.28, 0.0)) == HEADING
  assert colour_at(frame, layout.point(0, 1, -0.28, 0.0)) == agent_colour(0)
  assert colour_at(frame, layout.point(0, 1, 0.0, -0.28)) == agent_colour(0)
  assert colour_at(frame, layout.point(0, 1, 0.45, 0.45)) == BACKGROUND  # a corridor, no shelf

  # Agent 1 at (3, 0) faces up and carries B (not requested): shelf and outline around the disc.
  assert colour_at(frame, layout.point(3, 0, 0.22, 0.22)) == agent_colour(1)
  assert colour_at(frame, layout.point(3, 0, 0.0, -0.28)) == HEADING
  assert colour_at(frame, layout.point(3, 0, 0.0, 0.28)) == agent_colour(1)
  assert colour_at(frame, layout.point(3, 0, 0.3, 0.3)) == SHELF
  assert colour_at(frame, layout.point(3, 0, 0.4, 0.4)) == CARRIED_OUTLINE
  assert colour_at(frame, layout.point(3, 0, -0.4, 0.0)) == CARRIED_OUTLINE
  # No other shelf has the carried outline; agents' colours only in their cells.
  top = layout.header_height
  for colour, (r, c) in ((CARRIED_OUTLINE, (3, 0)), (agent_colour(0), (0, 1)), (agent_colour(1), (3, 0))):
    found = mask_of(frame, colour)
    ys, xs = cell_interior(layout, r, c)
    found[ys, xs] = False
    assert not found[top:].any(), colour


def test_rware_headings_point_each_way():
  env, _, _ = hand_built_rware()
  layout = rendering.layout_for(env, cell=CELL)
  agent = env.agents[0]
  for direction, (dx, dy) in ((Direction.UP, (0, -1)), (Direction.DOWN, (0, 1)),
                              (Direction.LEFT, (-1, 0)), (Direction.RIGHT, (1, 0))):
    agent.dir = direction
    frame = rendering.render_rware(env, cell=CELL)
    assert colour_at(frame, layout.point(0, 1, 0.28 * dx, 0.28 * dy)) == HEADING, direction
    assert colour_at(frame, layout.point(0, 1, -0.28 * dx, -0.28 * dy)) == agent_colour(0), direction


def test_rware_requested_carried_shelf_and_header():
  env, a, b = hand_built_rware()
  # Agent 1 now carries the requested shelf A; B is back in its slot.
  env.agents[1].carrying_shelf = a
  a.x, a.y = 0, 3
  b.x, b.y = 7, 2
  frame = rendering.render_rware(env, step=12, actions=[1, 4], rewards=[0.0, 1.0], cell=CELL)
  layout = rendering.layout_for(env, cell=CELL)
  assert colour_at(frame, layout.point(3, 0, 0.3, 0.3)) == REQUESTED_SHELF
  assert colour_at(frame, layout.point(3, 0, 0.4, 0.4)) == CARRIED_OUTLINE
  assert rendering.header_lines(2, 12, [1, 4], [0.0, 1.0], rendering.RWARE_ACTION_NAMES)[1:] == [
    "agent 0  FORWARD      reward +0.000", "agent 1  TOGGLE_LOAD  reward +1.000"]


# --------------------------------------------------------------------------------------------------
# Videos and frames

def distinct_frames(count, height=33, width=47):
  """Frames that differ from each other: a bar of 10 rows moving down, in 4 flat colours."""
  frames = np.zeros((count, height, width, 3), np.uint8)
  frames[:] = (30, 60, 90)
  for t in range(count):
    frames[t, t % (height - 10):t % (height - 10) + 10, :, :] = (240, 200, 20)
    frames[t, :, t % width] = (200, 30, 30)
  return frames


def test_gif_has_the_frames(tmp_path):
  tmp = str(tmp_path)
  frames = distinct_frames(7)
  path = video.write_video(os.path.join(tmp, "a.gif"), frames, fps=5)
  back = iio.imread(path, index=None)
  assert back.shape == (7, 33, 47, 3)
  # Four flat colours survive the GIF palette exactly.
  assert np.array_equal(back, frames)
  assert not [n for n in os.listdir(tmp) if n.startswith(".")]  # no partial file left


def test_mp4_has_the_frames_with_even_sides(tmp_path):
  tmp = str(tmp_path)
  frames = distinct_frames(9)
  path = video.write_video(os.path.join(tmp, "a.MP4"), list(frames), fps=10)
  reader = imageio_v2.get_reader(path, format="FFMPEG")
  try:
    assert reader.count_frames() == 9
    assert reader.get_meta_data()["size"] == (48, 34)  # (width, height), padded to even
    first = reader.get_data(0)
  finally:
    reader.close()
  # Lossy, but the background and the bar are where they were.
  assert np.abs(first[25, 20].astype(int) - (30, 60, 90)).max() < 20
  assert np.abs(first[5, 20].astype(int) - (240, 200, 20)).max() < 20


def test_rendered_episode_to_gif_has_one_frame_per_step(tmp_path):
  tmp = str(tmp_path)
  env = lbf_env()
  rng = np.random.default_rng(1)
  frames = [rendering.render(env, cell=16)]
  for _ in range(6):
    actions = rng.integers(0, 6, size=2)
    _, rewards, _, _, _ = env.step(actions.tolist())
    frames.append(rendering.render(env, actions=actions, rewards=rewards, cell=16))
  path = video.write_video(os.path.join(tmp, "episode.gif"), frames, fps=10)
  assert iio.improps(path, index=None).shape == (7,) + frames[0].shape
  # A path in directories that do not exist yet: they are created (the README's `--video=videos/gst.mp4`).
  nested = video.write_video(os.path.join(tmp, "videos", "new", "episode.gif"), frames, fps=10)
  assert iio.improps(nested, index=None).shape == (7,) + frames[0].shape


@pytest.mark.parametrize("name, message", [
  ("clip.avi", r"has extension '.avi': expected one of .gif, .mp4"),
  ("clip", r"has extension '\(none\)': expected one of .gif, .mp4"),
  ("existing.gif/clip.gif", r"existing.gif' is not a directory"),
  ("existing.gif", r"already exists: expected a new file"),
])
def test_bad_video_path_writes_nothing(name, message, tmp_path):
  tmp = str(tmp_path)
  with open(os.path.join(tmp, "existing.gif"), "wb") as f:
    f.write(b"keep")
  before = sorted(os.listdir(tmp))
  with pytest.raises(ValueError, match=message):
    video.check_video_path(os.path.join(tmp, name))
  with pytest.raises(ValueError, match=message):
    video.write_video(os.path.join(tmp, name), distinct_frames(2))
  assert sorted(os.listdir(tmp)) == before
  with open(os.path.join(tmp, "existing.gif"), "rb") as f:
    assert f.read() == b"keep"


@pytest.mark.parametrize("frames, fps, message", [
  ([], 10, "no frames"),
  (np.zeros((2, 4, 4, 3), np.float32), 10, "frame dtype float32 is not allowed: expected uint8"),
  (np.zeros((2, 4, 4, 4), np.uint8), 10, r"frame shape \(4, 4, 4\) is not allowed"),
  ([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)], 10, "frames have different shapes"),
  (np.zeros((2, 4, 4, 3), np.uint8), 0, r"fps=0 is not allowed: expected a number in \(0, 100\]"),
])
def test_bad_frames_write_nothing(frames, fps, message, tmp_path):
  tmp = str(tmp_path)
  before = sorted(os.listdir(tmp))
  with pytest.raises(ValueError, match=message):
    video.write_video(os.path.join(tmp, "bad.mp4"), frames, fps=fps)
  assert sorted(os.listdir(tmp)) == before


def test_png_frames_round_trip_and_refuse_a_used_directory(tmp_path):
  tmp = str(tmp_path)
  frames = distinct_frames(3)
  paths = video.write_frames(os.path.join(tmp, "frames"), frames)
  assert [p.name for p in paths] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
  for p, frame in zip(paths, frames):
    assert np.array_equal(iio.imread(p), frame)
  with pytest.raises(ValueError, match="is not empty: expected a new or empty directory"):
    video.write_frames(os.path.join(tmp, "frames"), frames)
  with pytest.raises(ValueError, match="is a file: expected a new or empty directory"):
    video.write_frames(paths[0], frames)
  with pytest.raises(ValueError, match="frame_00000.png' is not a directory, so .* cannot be created"):
    video.write_frames(os.path.join(paths[0], "below", "frames"), frames)
  assert len(os.listdir(os.path.join(tmp, "frames"))) == 3
  # Missing parents are created with the directory.
  assert len(video.write_frames(os.path.join(tmp, "new", "nested", "frames"), frames[:2])) == 2
  os.mkdir(os.path.join(tmp, "empty"))
  assert len(video.write_frames(os.path.join(tmp, "empty"), frames[:1])) == 1


def test_summary_frames_are_evenly_spaced_with_first_and_last():
  frames = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
  assert video.summary_frames(frames, 4)[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
  assert video.summary_frames(frames, 3)[:, 0, 0, 0].tolist() == [0, 4, 9]  # round(4.5) = 4
  assert video.summary_frames(frames, 1)[:, 0, 0, 0].tolist() == [0]
  assert len(video.summary_frames(frames, 50)) == 10
  with pytest.raises(ValueError, match="max_frames=0 is not allowed: expected an integer >= 1"):
    video.summary_frames(frames, 0)


def test_encode_gif_timing():
  data = video.encode_gif(distinct_frames(3), fps=4)
  assert data[:6] == b"GIF89a"
  meta = iio.immeta(data, index=0, extension=".gif")
  assert meta["duration"] == 250  # ms: 100 / 4 = 25 hundredths
  assert meta["loop"] == 0


@pytest.mark.slow
def test_tensorboard_summaries_hold_the_frames(tmp_path):
  tmp = str(tmp_path)
  import tensorflow as tf
  logdir = os.path.join(tmp, "tb")
  frames = distinct_frames(12)
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    assert video.tensorboard_video_summary("eval/episode", frames, step=5, max_frames=6)
    assert video.tensorboard_video_summary("eval/frames", frames, step=5, max_frames=4, animated=False)
  writer.close()
  values = {}
  for name in os.listdir(logdir):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
      for value in event.summary.value:
        values[value.tag] = (event.step, value)
  step, gif = values["eval/episode"]
  assert step == 5 and gif.metadata.plugin_data.plugin_name == "images"
  width, height, data = tf.make_ndarray(gif.tensor)
  assert (width, height) == (b"47", b"33")
  assert np.array_equal(iio.imread(data, index=None, extension=".gif"), frames[[0, 2, 4, 7, 9, 11]])
  step, images = values["eval/frames"]
  encoded = tf.make_ndarray(images.tensor)
  assert step == 5 and len(encoded) == 2 + 4
  assert np.array_equal(iio.imread(encoded[3], extension=".png"), frames[4])
