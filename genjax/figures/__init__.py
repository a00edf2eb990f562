"""Pictures of a model and its run: the loop's grids, and every figure of a trained workdir.

  python -m genjax.figures --config=configs/<method>.py[:preset] --workdir=DIR   # -> DIR/figures/*.png

`draw`: numpy in, uint8 RGB out (grids, titled panels, interpolation, attribute vectors, t-SNE, curves);
`write`: what a TrainState and its run's events give (`write_figures`, the loop's `Visuals`).
"""
