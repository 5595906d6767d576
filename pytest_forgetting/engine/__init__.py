"""The evaluation engine: a session owning the base, its candidates, stored results and the verdicts."""
