"""Tasks built on the engine, one job each: validate a checkpoint, export it, predict images."""
