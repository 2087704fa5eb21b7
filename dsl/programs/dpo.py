def dpo(ratio, advantage, progress):
    gain = (ratio - 1.0) * advantage
    drift_up = relu(gain - 2.0 * tanh(gain / 2.0))
    log_gain = log(ratio) * advantage
    drift_down = relu(log_gain - 0.6 * tanh(log_gain / 0.6))
    drift = where(advantage, drift_up, drift_down)
    return drift
