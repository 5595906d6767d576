"""Model specs (light, no torch), the backend contract, and the transformers/peft backend."""
