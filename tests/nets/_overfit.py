"""The "a small network overfits one batch" check that every file of tests/nets runs.

An end-to-end test of capacity and gradient flow: Adam on one fixed batch must bring the loss
down to ``factor`` (a tenth) of its first value within ``steps`` steps. A broken skip, a detached
branch or a dead head shows up here even when every shape is right.
"""
import torch


def overfit(model, loss_fn, *, steps=300, lr=1e-2, factor=0.1, seed=None, check_grads=False):
    """Adam on ``loss_fn()`` (a closure that runs ``model`` on the fixed batch) until the loss is at most
    ``factor`` times its first value, or ``steps`` steps. ``seed`` reseeds torch first (dropout draws);
    ``check_grads``: after the first backward, every trainable parameter has a finite gradient.
    Returns ``(first, last)`` losses."""
    if seed is not None:
        torch.manual_seed(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    first = last = None
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        if first is None and check_grads:
            for name, p in model.named_parameters():
                if p.requires_grad:
                    assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
        last = loss.item()
        first = last if first is None else first
        if last <= factor * first:
            break
    return first, last


def assert_overfits(model, loss_fn, **kw):
    """:func:`overfit`, then the loss must have reached ``factor`` of its first value."""
    first, last = overfit(model, loss_fn, **kw)
    assert last <= kw.get("factor", 0.1) * first, (first, last)
