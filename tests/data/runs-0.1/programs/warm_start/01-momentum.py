def momentum(w, g, m, lr):
    m = 0.9 * m + g
    update = lr * m
    return update, m
