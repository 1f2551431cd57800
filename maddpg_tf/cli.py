"""Helpers shared by the command-line programs."""


def one_line(message):
  """An error as one readable line: the last line of an embedded traceback, whitespace collapsed."""
  text = str(message)
  if "Traceback (most recent call last)" in text:
    head = text.split("Error whilst parsing config file")[0].rstrip(": ")
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    text = f"{head}: {last.split(': ', 1)[-1]}" if head else last
  return " ".join(text.split())
