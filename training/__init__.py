"""Learning to rank from uptake: simulate worlds, load uptake, train, evaluate and report."""
