"""dlgrader: an autograder and course package for neural networks and deep learning.

Layout (docs/ARCHITECTURE.md): ``sandbox/`` runs student code, ``codec`` carries data out of it,
``plugin`` is the grading protocol for pytest, ``checks`` are the judges' assertions, ``results``
writes results.json and the gradebook, ``grading`` runs batches, ``release`` makes student stubs.
"""

__version__ = "0.1.0"
