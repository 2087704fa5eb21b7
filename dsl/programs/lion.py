def lion(w, g, m, lr):
    update = sign(interp(g, m, 0.9))
    m = interp(g, m, 0.99)
    update = (update + 0.01 * w) * lr
    return update, m
