"""A space of a few dozen operators, so that real latency tables build, bundle and import in
seconds; the latency tests share it."""

SMALL_SPACE = """\
name: lut_test
description: a few dozen operators, so a real table builds in seconds
stem: {channels: 8, kernel: 3, stride: 2, act: relu}
head: {conv_channels: 32, fc_channels: 0, act: relu, dropout: 0.0}
block_choices: {expansion: [3], kernel: [3], groups: [1], se_ratio: [0, 0.25], act: [relu]}
stages:
  - {depth: [1, 2], width: [8, 16], stride: 2}
  - {depth: [1, 2], width: [16], stride: 2, kernel: [3, 5]}
"""
