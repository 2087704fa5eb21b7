def nesterov_24(w, g, m, v, lr, step):
    m = interp(g, m, 0.7383576080272077)
    v = interp(square(g), v, 0.7993834173110493)
    n = interp(g, m, 0.7383576080272077)
    update = lr * n / (sqrt(v) + 1e-08)
    return update, m, v
