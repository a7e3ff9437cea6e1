"""The cardio assets, one per state of the seed's state machine."""
