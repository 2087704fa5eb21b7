def laprop(w, g, m, v, lr, step):
    v = interp(square(g), v, 0.999)
    m = interp(g / (sqrt(v / (1.0 - 0.999 ** step)) + 1e-08), m, 0.9)
    update = lr * (m / (1.0 - 0.9 ** step) + 0.01 * w)
    return update, m, v
