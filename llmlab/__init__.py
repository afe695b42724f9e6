"""llmlab: exercises, reference solutions and an autograder for an LLM course."""

__version__ = "0.1.0"
