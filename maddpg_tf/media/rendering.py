"""Headless frames of Level-Based Foraging and Robotic Warehouse states, drawn with NumPy and Pillow.

The packages' own renderers open a pyglet window; these draw into an image, so they work on a server or
in CI. Each frame is a uint8 array [H, W, 3]:

    H = header_height + rows * cell + 1,    W = cols * cell + 1,
    header_height = (1 + num_agents) * HEADER_LINE + 2 * HEADER_PAD.

The header holds one line "step t" (plus the team reward when rewards are given) and one line per agent
with its action (by name) and reward; it has the same height on every frame of an episode, so a video's
frames share one size. Below it the grid: cell (row, col) covers pixels

    x in [col * cell, (col + 1) * cell),   y in [header_height + row * cell, header_height + (row + 1) * cell),

with a 1-pixel GRID_LINE on each cell's top and left edge and one more line closing the grid on the
right and at the bottom (`Layout.cell_box`, `Layout.point`). Shapes are
centred on their cell and sized in fractions of `cell` (the constants below), so a point at a known
fraction from a cell's centre shows a known colour: e.g. `Layout.point(r, c, 0.22, 0.22)` lies on an
agent's disc and on no text.

LBF: food is a FOOD square with its level; an agent is a disc in `agent_colour(i)` with its level in the
middle and its index i at the cell's top-left corner; with partial observability (sight smaller than the
field) each agent's view square is outlined in its colour.

RWARE: corridor cells are BACKGROUND, shelf slots without a shelf SHELF_SLOT, goals GOAL; a shelf is a
SHELF square (REQUESTED_SHELF when it is in the request queue); an agent is a disc in `agent_colour(i)`
with its index and a HEADING triangle pointing where it faces; a carried shelf is drawn under its agent
with a CARRIED_OUTLINE border. Agents are numbered from 0 as in the action and reward arrays (rware's own
`Agent.id` counts from 1).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np
from lbforaging.foraging.environment import ForagingEnv
from PIL import Image, ImageDraw, ImageFont
from rware.warehouse import Warehouse

__all__ = [
  "DEFAULT_CELL",
  "LBF_ACTION_NAMES",
  "RWARE_ACTION_NAMES",
  "Layout",
  "layout_for",
  "agent_colour",
  "header_lines",
  "render_lbf",
  "render_rware",
  "render",
]

# --------------------------------------------------------------------------------------------------
# Colours (RGB)

BACKGROUND = (250, 250, 247)
GRID_LINE = (205, 205, 200)
HEADER_BACKGROUND = (34, 38, 46)
HEADER_TEXT = (236, 238, 240)
CELL_TEXT = (255, 255, 255)
CELL_TEXT_STROKE = (20, 20, 20)
FOOD = (226, 170, 24)
SHELF_SLOT = (226, 226, 220)
SHELF = (120, 124, 138)
REQUESTED_SHELF = (0, 150, 136)
CARRIED_OUTLINE = (250, 204, 21)
GOAL = (60, 60, 66)
HEADING = (20, 20, 20)

# Agent i is drawn in AGENT_COLOURS[i % len(AGENT_COLOURS)]: all differ from the object colours above.
AGENT_COLOURS = (
  (31, 119, 180),   # blue
  (214, 39, 40),    # red
  (148, 103, 189),  # purple
  (23, 158, 190),   # cyan
  (227, 119, 194),  # pink
  (140, 86, 75),    # brown
  (44, 160, 44),    # green
  (82, 84, 163),    # indigo
)

# --------------------------------------------------------------------------------------------------
# Geometry, in fractions of a cell

DEFAULT_CELL = 48
AGENT_RADIUS_LBF = 0.40    # disc radius
AGENT_RADIUS_RWARE = 0.34  # smaller, so a carried shelf shows around it
FOOD_HALF = 0.38           # half the side of the food square
SHELF_HALF = 0.42          # half the side of a shelf square
HEADING_TIP = 0.34         # triangle tip, from the centre towards the heading
HEADING_BASE = 0.16        # triangle base line, from the centre towards the heading
HEADING_HALF_WIDTH = 0.12  # half the triangle's base
HEADER_LINE = 17           # pixels per header line
HEADER_PAD = 4             # pixels above and below the header text
HEADER_FONT = 13

# The packages' action enums, by value (lbforaging.foraging.environment.Action, rware.warehouse.Action).
LBF_ACTION_NAMES = ("NONE", "NORTH", "SOUTH", "WEST", "EAST", "LOAD")
RWARE_ACTION_NAMES = ("NOOP", "FORWARD", "LEFT", "RIGHT", "TOGGLE_LOAD")

# rware's Direction values (UP, DOWN, LEFT, RIGHT) as (d_col, d_row) on the image.
_RWARE_HEADINGS = ((0, -1), (0, 1), (-1, 0), (1, 0))


def agent_colour(index: int) -> tuple[int, int, int]:
  """The colour of agent `index` (0-based), cycling through AGENT_COLOURS."""
  return AGENT_COLOURS[index % len(AGENT_COLOURS)]


@dataclasses.dataclass(frozen=True)
class Layout:
  """Pixel geometry of a frame: a header strip of `header_height` pixels over a rows x cols grid."""

  rows: int
  cols: int
  cell: int
  header_height: int

  @property
  def width(self) -> int:
    return self.cols * self.cell + 1

  @property
  def height(self) -> int:
    return self.header_height + self.rows * self.cell + 1

  def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of cell (row, col), x1 and y1 exclusive; the grid line is at x0 and y0."""
    x0 = col * self.cell
    y0 = self.header_height + row * self.cell
    return x0, y0, x0 + self.cell, y0 + self.cell

  def point(self, row: int, col: int, dx: float = 0.0, dy: float = 0.0) -> tuple[int, int]:
    """Pixel (x, y) at (dx, dy) cells from the centre of cell (row, col) (dy > 0 is down)."""
    x0, y0, _, _ = self.cell_box(row, col)
    return (int(np.floor(x0 + (0.5 + dx) * self.cell)), int(np.floor(y0 + (0.5 + dy) * self.cell)))


def _header_height(num_agents: int) -> int:
  return (1 + num_agents) * HEADER_LINE + 2 * HEADER_PAD


def _check_cell(cell: object) -> int:
  if isinstance(cell, bool) or not isinstance(cell, (int, np.integer)) or not 8 <= cell <= 512:
    raise ValueError(f"cell={cell!r} is not allowed: expected an integer number of pixels in [8, 512]")
  return int(cell)


def layout_for(env, *, cell: int = DEFAULT_CELL) -> Layout:
  """The `Layout` of `env`'s frames (an LBF ForagingEnv or an RWARE Warehouse, wrapped or not)."""
  env = _unwrap(env)
  cell = _check_cell(cell)
  if _is_lbf(env):
    rows, cols = env.field.shape
    return Layout(int(rows), int(cols), cell, _header_height(len(env.players)))
  if _is_rware(env):
    rows, cols = env.grid_size
    return Layout(int(rows), int(cols), cell, _header_height(len(env.agents)))
  raise _unsupported(env)


# --------------------------------------------------------------------------------------------------
# Header text

def _per_agent(values, num_agents: int, what: str) -> list | None:
  if values is None:
    return None
  # One entry per agent along the first axis (an rware action with message bits is a row).
  values = list(values) if np.ndim(values) else [values]
  if len(values) != num_agents:
    raise ValueError(f"{what} has {len(values)} entries: expected one per agent ({num_agents})")
  return values


def _action_name(action, names: Sequence[str]) -> str:
  action = getattr(action, "value", action)  # an Action enum member
  # rware with message bits takes [move, bit, ...]: the move is the first entry.
  if np.ndim(action):
    action = np.asarray(action).reshape(-1)[0]
  try:
    index = int(action)
  except (TypeError, ValueError):
    index = None
  if index is None or index != action or not 0 <= index < len(names):
    raise ValueError(f"action {action!r} is not allowed: expected an integer in [0, {len(names) - 1}] "
                     f"({', '.join(names)})")
  return names[index]


def header_lines(num_agents: int, step: int | None, actions=None, rewards=None,
                 action_names: Sequence[str] = LBF_ACTION_NAMES) -> list[str]:
  """The header's text: "step t" (and the team reward), then "agent i  ACTION  reward r" per agent.

  `actions` [num_agents] ints (or None: "-"), `rewards` [num_agents] floats (or None: "-"); `step` None
  writes "step -". Rewards are written with sign and 3 decimals.
  """
  actions = _per_agent(actions, num_agents, "actions")
  rewards = _per_agent(rewards, num_agents, "rewards")
  first = f"step {'-' if step is None else int(step)}"
  if rewards is not None:
    first += f"    team reward {float(np.sum(np.asarray(rewards, np.float64))):+.3f}"
  width = max(len(n) for n in action_names)
  lines = [first]
  for i in range(num_agents):
    action = "-" if actions is None else _action_name(actions[i], action_names)
    reward = "-" if rewards is None else f"{float(rewards[i]):+.3f}"
    lines.append(f"agent {i}  {action:<{width}}  reward {reward}")
  return lines


# --------------------------------------------------------------------------------------------------
# Drawing

@functools.lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.ImageFont:
  # Pillow's built-in font: no font file, no display.
  return ImageFont.load_default(size=size)


def _canvas(layout: Layout) -> tuple[Image.Image, ImageDraw.ImageDraw]:
  image = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
  draw = ImageDraw.Draw(image)
  draw.rectangle((0, 0, layout.width - 1, layout.header_height - 1), fill=HEADER_BACKGROUND)
  return image, draw


def _draw_header(draw: ImageDraw.ImageDraw, lines: Sequence[str]) -> None:
  # Each agent's line starts with a swatch of its colour, to match it with its disc.
  font = _font(HEADER_FONT)
  for k, line in enumerate(lines):
    top = HEADER_PAD + k * HEADER_LINE
    if k > 0:
      draw.rectangle((6, top + 3, 15, top + 12), fill=agent_colour(k - 1))
    draw.text((22, top), line, fill=HEADER_TEXT, font=font)


def _draw_grid_lines(draw: ImageDraw.ImageDraw, layout: Layout) -> None:
  top, bottom = layout.header_height, layout.height - 1
  for col in range(layout.cols):
    draw.line((col * layout.cell, top, col * layout.cell, bottom), fill=GRID_LINE)
  draw.line((layout.width - 1, top, layout.width - 1, bottom), fill=GRID_LINE)
  for row in range(layout.rows):
    y = top + row * layout.cell
    draw.line((0, y, layout.width - 1, y), fill=GRID_LINE)
  draw.line((0, bottom, layout.width - 1, bottom), fill=GRID_LINE)


def _fill_cell(draw, layout: Layout, row: int, col: int, colour) -> None:
  x0, y0, x1, y1 = layout.cell_box(row, col)
  draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), fill=colour)


def _square(draw, layout: Layout, row: int, col: int, half: float, colour, outline=None, width=0):
  x0, y0 = layout.point(row, col, -half, -half)
  x1, y1 = layout.point(row, col, half, half)
  draw.rectangle((x0, y0, x1, y1), fill=colour, outline=outline, width=width)


def _disc(draw, layout: Layout, row: int, col: int, radius: float, colour) -> None:
  cx, cy = layout.point(row, col)
  r = radius * layout.cell
  draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def _centred_text(draw, xy, text: str, size: int) -> None:
  draw.text(xy, text, fill=CELL_TEXT, font=_font(size), anchor="mm",
            stroke_width=max(1, size // 12), stroke_fill=CELL_TEXT_STROKE)


def _to_array(image: Image.Image) -> np.ndarray:
  return np.array(image, dtype=np.uint8)


def render_lbf(env, *, step: int | None = None, actions=None, rewards=None,
               cell: int = DEFAULT_CELL) -> np.ndarray:
  """A frame of a ForagingEnv's state: uint8 [H, W, 3] (see the module docstring for the geometry).

  Reads `env.field` [rows, cols] (food levels, 0 = none), `env.players` (`.position` (row, col),
  `.level`) and `env.sight`. `step` defaults to `env.current_step`; `actions` [num_agents] are LBF action
  indices (NONE, NORTH, SOUTH, WEST, EAST, LOAD), `rewards` [num_agents] floats.
  """
  env = _unwrap(env)
  if not _is_lbf(env):
    raise ValueError(f"render_lbf takes an lbforaging ForagingEnv, not {type(env).__name__}")
  layout = layout_for(env, cell=cell)
  players = env.players
  if any(p.position is None for p in players):
    raise ValueError("the ForagingEnv has no player positions yet: call reset() before rendering")
  if step is None:
    step = getattr(env, "current_step", None)
  lines = header_lines(len(players), step, actions, rewards, LBF_ACTION_NAMES)

  image, draw = _canvas(layout)
  _draw_header(draw, lines)
  _draw_grid_lines(draw, layout)
  c = layout.cell

  rows, cols = layout.rows, layout.cols
  if int(env.sight) < max(rows, cols) - 1:
    # Partial observability: outline what each agent sees (its row/col +- sight, inside the field).
    s = int(env.sight)
    for i, p in enumerate(players):
      r, col = int(p.position[0]), int(p.position[1])
      x0, y0, _, _ = layout.cell_box(max(r - s, 0), max(col - s, 0))
      _, _, x1, y1 = layout.cell_box(min(r + s, rows - 1), min(col + s, cols - 1))
      draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=agent_colour(i), width=2)

  for r, col in zip(*np.nonzero(env.field)):
    _square(draw, layout, r, col, FOOD_HALF, FOOD)
    _centred_text(draw, layout.point(r, col), str(int(env.field[r, col])), round(0.42 * c))

  for i, p in enumerate(players):
    r, col = int(p.position[0]), int(p.position[1])
    _disc(draw, layout, r, col, AGENT_RADIUS_LBF, agent_colour(i))
    _centred_text(draw, layout.point(r, col), str(int(p.level)), round(0.42 * c))
    _centred_text(draw, layout.point(r, col, -0.34, -0.34), str(i), max(8, round(0.24 * c)))
  return _to_array(image)


def render_rware(env, *, step: int | None = None, actions=None, rewards=None,
                 cell: int = DEFAULT_CELL) -> np.ndarray:
  """A frame of a Warehouse's state: uint8 [H, W, 3] (see the module docstring for the geometry).

  Reads `env.grid_size` (rows, cols), `env.highways` [rows, cols] (1 = corridor), `env.goals` [(x, y)],
  `env.shelfs` (`.x`, `.y`), `env.request_queue` (shelves) and `env.agents` (`.x`, `.y`, `.dir`,
  `.carrying_shelf`); x is the column, y the row. `step` defaults to the env's step counter; `actions`
  [num_agents] are RWARE action indices (NOOP, FORWARD, LEFT, RIGHT, TOGGLE_LOAD), `rewards` floats.
  """
  env = _unwrap(env)
  if not _is_rware(env):
    raise ValueError(f"render_rware takes an rware Warehouse, not {type(env).__name__}")
  layout = layout_for(env, cell=cell)
  agents = env.agents
  if not agents or not hasattr(env, "shelfs"):
    raise ValueError("the Warehouse has no agents or shelves yet: call reset() before rendering")
  if step is None:
    step = getattr(env, "_cur_steps", None)
  lines = header_lines(len(agents), step, actions, rewards, RWARE_ACTION_NAMES)

  image, draw = _canvas(layout)
  _draw_header(draw, lines)
  _draw_grid_lines(draw, layout)
  c = layout.cell

  slots = np.argwhere(np.asarray(env.highways) == 0)
  for r, col in slots:
    _fill_cell(draw, layout, int(r), int(col), SHELF_SLOT)
  for x, y in env.goals:
    _fill_cell(draw, layout, int(y), int(x), GOAL)

  requested = {id(s) for s in env.request_queue}
  carried = {id(a.carrying_shelf) for a in agents if a.carrying_shelf is not None}
  outline_width = max(2, c // 12)
  for shelf in env.shelfs:
    colour = REQUESTED_SHELF if id(shelf) in requested else SHELF
    if id(shelf) in carried:
      _square(draw, layout, int(shelf.y), int(shelf.x), SHELF_HALF, colour,
              outline=CARRIED_OUTLINE, width=outline_width)
    else:
      _square(draw, layout, int(shelf.y), int(shelf.x), SHELF_HALF, colour)

  for i, agent in enumerate(agents):
    r, col = int(agent.y), int(agent.x)
    _disc(draw, layout, r, col, AGENT_RADIUS_RWARE, agent_colour(i))
    dx, dy = _RWARE_HEADINGS[int(getattr(agent.dir, "value", agent.dir))]
    # (dx, dy) is the heading; (-dy, dx) runs along the triangle's base.
    tip = layout.point(r, col, HEADING_TIP * dx, HEADING_TIP * dy)
    left = layout.point(r, col, HEADING_BASE * dx - HEADING_HALF_WIDTH * dy,
                        HEADING_BASE * dy + HEADING_HALF_WIDTH * dx)
    right = layout.point(r, col, HEADING_BASE * dx + HEADING_HALF_WIDTH * dy,
                         HEADING_BASE * dy - HEADING_HALF_WIDTH * dx)
    draw.polygon((tip, left, right), fill=HEADING)
    _centred_text(draw, layout.point(r, col, -0.06 * dx, -0.06 * dy), str(i), max(8, round(0.3 * c)))
  return _to_array(image)


# --------------------------------------------------------------------------------------------------
# Dispatch

def _unwrap(env):
  # gymnasium wrappers expose the base env as `.unwrapped`; a bare env returns itself.
  return getattr(env, "unwrapped", env)


def _is_lbf(env) -> bool:
  return isinstance(env, ForagingEnv)


def _is_rware(env) -> bool:
  return isinstance(env, Warehouse)


def _unsupported(env) -> ValueError:
  return ValueError(f"cannot render a {type(env).__module__}.{type(env).__name__}: supported are "
                    "lbforaging's ForagingEnv and rware's Warehouse (wrapped or not)")


def render(env, **info) -> np.ndarray:
  """`render_lbf` or `render_rware`, by the env's type; `info`: step, actions, rewards, cell."""
  base = _unwrap(env)
  if _is_lbf(base):
    return render_lbf(base, **info)
  if _is_rware(base):
    return render_rware(base, **info)
  raise _unsupported(env)
