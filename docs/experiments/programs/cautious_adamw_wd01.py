def cautious_adamw_wd01(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    u = (m / (1.0 - 0.9 ** step)) / (sqrt(v / (1.0 - 0.999 ** step)) + 1e-08)
    mask = where(u * g, 1.0, 0.0)
    update = lr * (u * mask / (mean(mask) + 0.001) + 0.1 * w)
    return update, m, v
