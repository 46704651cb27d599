"""The answer key: one module per notebook, each with KEY = {check name: reference function}.

The one copy of every reference answer. The tests check that each passes its checker; `check.solution(...)`
prints it (after an attempt); `labkit course build` writes it into nbgrader's solution cells. A reference
function has the name and signature of the notebook's stub, and uses only names the notebook imports.
"""
