"""The hardened ffmpeg input arguments: whitelists always, GPU decoding only by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.media import input_args


def test_input_is_a_file_url_behind_the_whitelists() -> None:
    args = input_args(Path("/tmp/-odd name.mp4"))
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert "-format_whitelist" in args
    assert args[-2:] == ["-i", "file:/tmp/-odd name.mp4"]  # never read as an option


def test_hwaccel_goes_before_the_input_and_only_known_names_pass() -> None:
    args = input_args(Path("/tmp/v.mp4"), fast=True, hwaccel="cuda")
    assert args.index("-hwaccel") < args.index("-i")
    assert args[args.index("-hwaccel") + 1] == "cuda"
    assert "-hwaccel" not in input_args(Path("/tmp/v.mp4"))
    with pytest.raises(ValueError, match="hwaccel"):
        input_args(Path("/tmp/v.mp4"), hwaccel="cuda -i /etc/passwd")
