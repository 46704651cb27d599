"""The one error type labkit raises for bad input: its message says what to do."""


class LabkitError(ValueError):
    """A mistake the learner can fix; the message is one line that says how."""
