"""The one exception the audio front end raises for bad input files."""

from __future__ import annotations


class AudioError(ValueError):
    """A bad audio input: missing, unreadable, empty, or without an audio stream. The message names the file."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")
