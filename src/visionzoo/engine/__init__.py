"""Training engine: schedules, optimizers, loss, train step, checkpoints, evaluation, trainer."""
