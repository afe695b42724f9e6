"""Grading: isolated workers (``remote``, ``worker``), graded checks (``checks``), sessions
(``plugin``, ``runner``) and reports (``report``). Graders import from ``llmlab.grading.checks``."""
