"""Offline RL training on d3rlpy, and the policies it produces."""
