def muon(w, g, m, lr, step):
    m = interp(g, m, 0.95)
    nesterov = 0.95 * m / (1.0 - 0.95 ** (step + 1.0)) + 0.05 * g / (1.0 - 0.95 ** step)
    update = lr * (0.2 * orth(nesterov) + 0.01 * w)
    return update, m
