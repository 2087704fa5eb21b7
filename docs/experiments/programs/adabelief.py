def adabelief(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g - m), v, 0.999)
    u = (m / (1.0 - 0.9 ** step)) / (sqrt(v / (1.0 - 0.999 ** step)) + 1e-08)
    update = lr * (u + 0.01 * w)
    return update, m, v
