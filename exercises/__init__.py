"""Your exercises: one module per topic. Fill in the bodies; run `pytest exercises/` to self-check."""
