def adam_b2_095(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.95)
    m_hat = m / (1.0 - 0.9 ** step)
    v_hat = v / (1.0 - 0.95 ** step)
    update = lr * m_hat / (sqrt(v_hat) + 1e-08)
    return update, m, v
