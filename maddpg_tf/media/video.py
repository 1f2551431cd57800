"""Frames to files: GIF or MP4 videos, PNG frames, and TensorBoard image summaries.

Frames are uint8 arrays [H, W, 3] of one size (e.g. from `maddpg_tf.media.rendering.render`). Paths are
checked before anything is drawn or written (`check_video_path`, `check_frames_directory`), and a file
appears only complete: videos are written under a temporary name next to the target and renamed.

GIFs are written with Pillow (through imageio), MP4s as H.264 (yuv420p) with the ffmpeg binary that the
imageio-ffmpeg wheel ships; neither needs a display. TensorFlow is imported only by
`tensorboard_video_summary`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from maddpg_tf import extras, files

__all__ = [
  "VIDEO_KINDS",
  "check_video_path",
  "check_frames_directory",
  "stack_frames",
  "write_video",
  "write_frames",
  "summary_frames",
  "encode_gif",
  "tensorboard_video_summary",
]

VIDEO_KINDS = (".gif", ".mp4")
MP4_QUALITY = 8  # imageio-ffmpeg's 0-10 scale: sharp enough for the header text


def check_video_path(path) -> str:
  """The kind of video `path` names (".gif" or ".mp4", from its extension, any case).

  ValueError, and nothing written, if the extension is another, the directory it goes in can be neither
  found nor created (`files.check_parent_creatable`; `write_video` creates it), or something already
  exists at `path` (it is not overwritten); MissingExtra for an MP4 without the `video` extra
  (imageio-ffmpeg).
  """
  p = pathlib.Path(os.fspath(path))
  kind = p.suffix.lower()
  if kind not in VIDEO_KINDS:
    raise ValueError(f"video path {str(p)!r} has extension {p.suffix or '(none)'!r}: "
                     f"expected one of {', '.join(VIDEO_KINDS)}")
  files.check_parent_creatable(str(p), "video path")
  if p.exists() or p.is_symlink():
    raise ValueError(f"video path {str(p)!r} already exists: expected a new file (nothing is overwritten)")
  if kind == ".mp4":
    extras.require("video")  # MissingExtra (an ImportError) naming the extra that brings ffmpeg
  return kind


def check_frames_directory(directory) -> pathlib.Path:
  """`directory` as a Path, if PNG frames may go there: a new directory (its missing parents are created
  with it), or an existing empty directory. ValueError otherwise (a file, a non-empty directory, a parent
  that cannot be created)."""
  d = pathlib.Path(os.fspath(directory))
  if d.exists() or d.is_symlink():
    if not d.is_dir():
      raise ValueError(f"frames directory {str(d)!r} is a file: expected a new or empty directory")
    if any(d.iterdir()):
      raise ValueError(f"frames directory {str(d)!r} is not empty: expected a new or empty directory")
    return d
  files.check_parent_creatable(str(d), "frames directory")
  return d


def stack_frames(frames: Iterable[np.ndarray] | np.ndarray) -> np.ndarray:
  """The frames as one uint8 array [T, H, W, 3]; ValueError for none, another dtype, shape or size."""
  if isinstance(frames, np.ndarray):
    stacked = frames
    if stacked.ndim != 4:
      raise ValueError(f"frames array has shape {stacked.shape}: expected [T, H, W, 3]")
  else:
    frames = [np.asarray(f) for f in frames]
    if not frames:
      raise ValueError("no frames: expected at least one [H, W, 3] uint8 frame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
      raise ValueError(f"frames have different shapes {sorted(shapes)}: expected one [H, W, 3] size")
    stacked = np.stack(frames)
  if stacked.shape[0] == 0:
    raise ValueError("no frames: expected at least one [H, W, 3] uint8 frame")
  if stacked.ndim != 4 or stacked.shape[-1] != 3 or min(stacked.shape[1:3]) < 1:
    raise ValueError(f"frame shape {stacked.shape[1:]} is not allowed: expected [H, W, 3] (RGB)")
  if stacked.dtype != np.uint8:
    raise ValueError(f"frame dtype {stacked.dtype} is not allowed: expected uint8")
  return stacked


def _check_fps(fps) -> float:
  if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
      or not 0 < fps <= 100:
    raise ValueError(f"fps={fps!r} is not allowed: expected a number in (0, 100]")
  return float(fps)


def _even(frames: np.ndarray) -> np.ndarray:
  # H.264 in yuv420p needs even sides: repeat the last row/column where one is odd.
  _, h, w, _ = frames.shape
  pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
  return np.pad(frames, pad, mode="edge") if (h % 2 or w % 2) else frames


def write_video(path, frames: Sequence[np.ndarray] | np.ndarray, *, fps: float = 10) -> pathlib.Path:
  """Write `frames` ([T] x uint8 [H, W, 3]) as a GIF or MP4 at `fps` frames per second; the Path.

  The path is checked first (`check_video_path`), then the frames (`stack_frames`). MP4: H.264 with
  odd frame sides padded by one repeated row/column. GIF: each frame lasts round(100 / fps) / 100 s (the
  format counts hundredths), loops forever; Pillow merges a frame identical to the one before it into
  that frame (a longer one), so such a GIF holds fewer, longer frames.
  """
  kind = check_video_path(path)
  stacked = stack_frames(frames)
  fps = _check_fps(fps)
  target = pathlib.Path(os.fspath(path))
  files.make_parent(str(target))
  partial = target.with_name(f".{target.stem}.partial{kind}")
  try:
    if kind == ".gif":
      partial.write_bytes(encode_gif(stacked, fps=fps))
    else:
      import imageio.v2 as imageio  # pylint: disable=g-import-not-at-top
      writer = imageio.get_writer(partial, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                  pixelformat="yuv420p", quality=MP4_QUALITY, macro_block_size=1,
                                  ffmpeg_log_level="error")
      try:
        for frame in _even(stacked):
          writer.append_data(frame)
      finally:
        writer.close()
    os.replace(partial, target)
  finally:
    if partial.exists():
      partial.unlink()
  return target


def encode_gif(frames: Sequence[np.ndarray] | np.ndarray, *, fps: float = 10) -> bytes:
  """The bytes of an endlessly looping GIF of `frames` (see `write_video` on timing and merging)."""
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  stacked = stack_frames(frames)
  fps = _check_fps(fps)
  duration_ms = 10 * max(1, round(100 / fps))
  return iio.imwrite("<bytes>", stacked, extension=".gif", plugin="pillow",
                     duration=duration_ms, loop=0)


def write_frames(directory, frames: Iterable[np.ndarray] | np.ndarray) -> list[pathlib.Path]:
  """Write each frame as `frame_00000.png`, ... in `directory` (created if new); the paths in order.

  The directory is checked first (`check_frames_directory`), then the frames, then files are written.
  """
  d = check_frames_directory(directory)
  stacked = stack_frames(frames)
  digits = max(5, len(str(len(stacked) - 1)))
  d.mkdir(parents=True, exist_ok=True)
  paths = []
  for t, frame in enumerate(stacked):
    p = d / f"frame_{t:0{digits}d}.png"
    Image.fromarray(frame).save(p)
    paths.append(p)
  return paths


def summary_frames(frames: Sequence[np.ndarray] | np.ndarray, max_frames: int) -> np.ndarray:
  """At most `max_frames` of the frames, evenly spaced and always with the first and the last:
  uint8 [min(T, max_frames), H, W, 3]; frame k of the result is frame round(k (T-1) / (N-1))."""
  if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
    raise ValueError(f"max_frames={max_frames!r} is not allowed: expected an integer >= 1")
  stacked = stack_frames(frames)
  t = len(stacked)
  if t <= max_frames:
    return stacked
  if max_frames == 1:
    return stacked[:1]
  index = np.round(np.arange(max_frames) * (t - 1) / (max_frames - 1)).astype(np.int64)
  return stacked[index]


def tensorboard_video_summary(name: str, frames, step: int, *, max_frames: int = 100,
                              fps: float = 10, animated: bool = True, description: str | None = None):
  """Write an episode's frames to the default `tf.summary` writer at `step`; what `tf.summary.write`
  returns (False without a default writer).

  animated=True: one animated GIF image (TensorBoard's image plugin shows it playing) of at most
  `max_frames` evenly spaced frames. animated=False: those frames as an image batch
  (`tf.summary.image`, max_outputs = their number), shown as samples 0..N-1 under `name`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  chosen = summary_frames(frames, max_frames)
  if not animated:
    return tf.summary.image(name, chosen, step=step, max_outputs=len(chosen), description=description)
  from tensorboard.plugins.image import metadata  # pylint: disable=g-import-not-at-top
  # The image plugin's tensor: [width, height, encoded image, ...]; it serves a GIF as image/gif.
  _, h, w, _ = chosen.shape
  gif = encode_gif(chosen, fps=fps)
  with tf.summary.experimental.summary_scope(name, "video_summary") as (tag, _):
    return tf.summary.write(
      tag=tag, tensor=tf.constant([str(w).encode(), str(h).encode(), gif]), step=step,
      metadata=metadata.create_summary_metadata(display_name=None, description=description))
