"""The tests of the exercise checks: one file per chapter module of multiloss_helpers.exercises.

A package, so that the chapter files import their shared table from ``.cases`` under
pytest's ``--import-mode=importlib``.
"""
