def cautious_24(w, g, m, v, lr, step):
    m = interp(g, m, 0.7383576080272077)
    v = interp(square(g), v, 0.7993834173110493)
    u = m / (sqrt(v) + 1e-08)
    mask = where(u * g, 1.0, 0.0)
    update = lr * u * mask / (mean(mask) + 0.001)
    return update, m, v
