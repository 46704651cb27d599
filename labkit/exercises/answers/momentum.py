"""Reference answers for notebooks/05_momentum.ipynb (plain arithmetic on numbers and torch tensors)."""


def nesterov_step(x, v, grad, lr, beta):
    v = beta * v + grad  # the velocity, exactly as heavy ball updates it
    return x - lr * (grad + beta * v), v  # step along the look-ahead: the gradient plus β times the NEW velocity


def steady_step(lr, beta, grad, k):
    velocity = grad * (1 - beta ** k) / (1 - beta)  # grad·(1 + β + … + β^(k−1)): a geometric sum of k terms
    return lr * velocity


def heavy_ball_rate(lr, beta, h):
    a = 1 + beta - lr * h  # heavy ball on ½hx²: x_next = a·x − β·x_prev, so x_k mixes z^k for the roots z
    root = (a * a - 4 * beta) ** 0.5  # of z² − a·z + β = 0 (complex roots: ** 0.5 gives a complex number)
    return max(abs((a + root) / 2), abs((a - root) / 2))  # the slower root, by magnitude, sets the rate


def rmsprop_debiased_step(x, sq, grad, t, lr, alpha=0.99, eps=1e-8):
    sq = alpha * sq + (1 - alpha) * grad ** 2  # the state: the plain running mean, as RMSprop keeps it
    sq_hat = sq / (1 - alpha ** t)  # corrected only for this step's use: it started at 0
    return x - lr * grad / (sq_hat.sqrt() + eps), sq


KEY = {"nesterov": nesterov_step, "steady_step": steady_step, "heavy_ball_rate": heavy_ball_rate,
       "debiased_rmsprop": rmsprop_debiased_step}
