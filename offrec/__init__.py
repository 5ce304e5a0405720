"""offrec: offline counterfactual evaluation and batch RL for e-commerce recommendation."""

__version__ = "0.1.0"
