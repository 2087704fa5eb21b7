def nadamw(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    n = 0.9 * m / (1.0 - 0.9 ** (step + 1.0)) + 0.1 * g / (1.0 - 0.9 ** step)
    u = n / (sqrt(v / (1.0 - 0.999 ** step)) + 1e-08)
    update = lr * (u + 0.01 * w)
    return update, m, v
