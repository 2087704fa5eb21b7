def adamw(w, g, m, v, lr, step):
    m_1 = interp(g, m, 0.7383576080272077)
    v0 = clip(v, w)
    t0 = square(g)
    v2 = square(v)
    v_1 = interp(t0, v0, 0.999)
    t2 = 1.0 - g
    m_hat = m_1 / t2
    t5 = sqrt(v_1)
    t6 = t5 + (-7.449810153285291e-09)
    t7 = m_hat / t6
    t8 = 0.007582375580006658 * g
    t9 = t7 + v_1
    update = lr * t9
    return update, m_1, v_1
