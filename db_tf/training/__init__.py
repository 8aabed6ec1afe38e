"""Training machinery around DBNet.fit: optimizer + schedule, distribution, checkpoints, callbacks, --init."""
