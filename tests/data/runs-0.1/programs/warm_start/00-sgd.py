def sgd(w, g, lr):
    update = lr * g
    return update
