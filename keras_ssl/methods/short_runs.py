"""The warning for runs too short for a method's defaults to beat a random-init encoder.

Measured with the plain call (``benchmarks/own_data.py``; README, "Your own data"): a method
class with its defaults, Adam 1e-3, batch 256, 120 optimizer steps on 4,000 small gray images.
Only SimCLR improved on the random-init encoder there; MoCo, MoCo v3, NNCLR, BYOL, SimSiam,
Barlow Twins, VICReg, SwAV and DINO ended below it (BYOL also after 450 and 1,350). Their
Fashion-MNIST configs that beat random init (VICReg, Barlow Twins, MoCo v2, BYOL) did so in
about 1,400 steps. Those classes set ``short_run_steps = SHORT_RUN_STEPS``, and
:meth:`SSLMethod.plan_schedules` (which ``fit`` calls when it starts) warns for a shorter run.
"""

import warnings

#: Optimizer steps after which the Fashion-MNIST configs of VICReg, Barlow Twins, MoCo v2 and
#: BYOL beat the random-init encoder (3 epochs x 468 steps; README, "Every method, one budget").
SHORT_RUN_STEPS = 1400


class ShortRunWarning(UserWarning):
    """A method's defaults measured no gain over a random-init encoder at this run's length.

    Silence it with ``warnings.filterwarnings("ignore", category=ShortRunWarning)``.
    """


def warn_if_short(method, total_steps):
    """Warns (:class:`ShortRunWarning`) when ``total_steps`` optimizer steps are fewer than
    ``method.short_run_steps`` (``None``: never); the warning points at the caller of
    :meth:`SSLMethod.plan_schedules`."""
    needed = method.short_run_steps
    if needed is None or total_steps >= needed:
        return
    name = type(method).__name__
    warnings.warn(
        f"{name} is planned for {total_steps} optimizer steps. With {name}'s defaults, runs of "
        "120 steps on 4,000 small images ended below a random-init encoder of the same "
        "architecture on kNN (README, 'Your own data'; benchmarks/own_data.py); the "
        f"Fashion-MNIST configs that beat random init needed about {needed} steps. Fix: use "
        "keras_ssl.methods.SimCLR(encoder, temperature=0.2), which improved on random init in "
        f"120 steps, or train for at least {needed} steps (more epochs or more images) and "
        "compare the features with a random-init encoder.",
        ShortRunWarning,
        stacklevel=3,
    )
