def ppo_clip(ratio, advantage, progress):
    clipped = 1.0 + clip(ratio - 1.0, 0.2)
    drift = relu((ratio - clipped) * advantage)
    return drift
