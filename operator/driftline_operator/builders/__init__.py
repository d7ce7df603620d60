"""Pure builders of the objects the operator owns: dicts in, dicts out, no cluster access."""
