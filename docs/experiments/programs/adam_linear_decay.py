def adam_linear_decay(w, g, m, v, lr, step, progress):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    m_hat = m / (1.0 - 0.9 ** step)
    v_hat = v / (1.0 - 0.999 ** step)
    update = lr * (1.0 - progress) * m_hat / (sqrt(v_hat) + 1e-08)
    return update, m, v
