def adamw_wd01(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    m_hat = m / (1.0 - 0.9 ** step)
    v_hat = v / (1.0 - 0.999 ** step)
    update = lr * (m_hat / (sqrt(v_hat) + 1e-08) + 0.1 * w)
    return update, m, v
