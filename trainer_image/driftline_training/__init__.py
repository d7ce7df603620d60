"""Training and drift-check package of the trainer image."""
