"""Settings of a search on the `tiny` space that trains in seconds, shared by the slow tests."""

TINY_SEARCH = dict(
    space="tiny",
    target="armv8",
    budget_mflops=60.0,  # MFLOPs at 224: cuts through the middle of the `tiny` space (19 to 138)
    limit_train=400,
    epochs=1,
    batch_size=64,
    workers=2,
    warm_start=False,
    early_stopping=False,
    confirm_seeds=0,
)
"""SearchConfig settings of a search that trains in seconds: the slow tests' common base."""
