def decay_24(w, g, m, v, lr, step):
    m = interp(g, m, 0.7383576080272077)
    v = interp(square(g), v, 0.7993834173110493)
    update = lr * (m / (sqrt(v) + 1e-08) + 0.1 * w)
    return update, m, v
